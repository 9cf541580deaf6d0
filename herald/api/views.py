"""Read models: a notification as the API and `herald status` show it, from the workflow and the delivery log."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio.service import RPCError, RPCStatusCode

from herald.models import (
    ChannelName,
    DeliveryAttempt,
    NotificationOutcome,
    NotificationStatus,
)
from herald.store import Store
from starter.client import HeraldClient

QUERY_TIMEOUT = timedelta(seconds=5)


class ChannelReport(BaseModel):
    status: str
    attempts: list[DeliveryAttempt]
    error_type: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    fallback_for: ChannelName | None = None
    escalation: bool = False


class NotificationView(BaseModel):
    notification_id: str
    workflow_id: str
    agent_id: str
    user_id: str
    priority: str
    status: NotificationStatus
    channels: dict[ChannelName, ChannelReport]
    duplicate_of: str | None = None
    ops_alert: str | None = None


class TemporalUnavailable(Exception):
    """Temporal could not be asked about a notification that has no recorded outcome yet."""


def build_view(outcome: NotificationOutcome, attempts: list[DeliveryAttempt]) -> NotificationView:
    channels: dict[ChannelName, ChannelReport] = {}
    for channel, result in outcome.channels.items():
        channels[channel] = ChannelReport(
            status=result.status.value,
            attempts=[a for a in attempts if a.channel is channel],
            **result.model_dump(include={"error_type", "error", "provider_message_id", "fallback_for", "escalation"}),
        )
    return NotificationView(
        **outcome.model_dump(include={"notification_id", "workflow_id", "agent_id", "user_id", "duplicate_of"}),
        priority=outcome.priority.value,
        status=outcome.status,
        channels=channels,
        ops_alert=outcome.ops_alert,
    )


async def load_notification(store: Store, client: HeraldClient, notification_id: str) -> NotificationView | None:
    """The recorded outcome if the notification finished, else the live state from its workflow; None if unknown."""
    outcome = await store.get_outcome(notification_id)
    if outcome is None:
        try:
            outcome = await client.get_handle(notification_id).status(rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise TemporalUnavailable(f"Temporal did not answer ({exc.status.name})") from exc
    return build_view(outcome, await store.attempts(notification_id))
