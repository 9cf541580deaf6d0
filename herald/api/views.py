"""Read models: a notification as the API and `herald status` show it, from the workflow and the delivery log."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio.service import RPCError, RPCStatusCode

from herald.models import (
    ChannelName,
    ChannelResult,
    DeliveryAttempt,
    NotificationOutcome,
    NotificationStatus,
    Priority,
)
from herald.store import Store
from starter.client import HeraldClient

QUERY_TIMEOUT = timedelta(seconds=5)


class ChannelReport(ChannelResult):
    """A channel's result with every attempt from the delivery log."""

    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class NotificationView(BaseModel):
    notification_id: str
    workflow_id: str
    agent_id: str
    user_id: str
    priority: Priority
    status: NotificationStatus
    channels: dict[ChannelName, ChannelReport]
    duplicate_of: str | None = None
    ops_alert: str | None = None
    held_until: datetime | None = Field(default=None, description="quiet hours held it until then")
    digest_id: str | None = Field(default=None, description="the digest notification that carried it")


class TemporalUnavailable(Exception):
    """Temporal could not be asked about a notification that has no recorded outcome yet."""


def build_view(outcome: NotificationOutcome, attempts: list[DeliveryAttempt]) -> NotificationView:
    channels = {
        channel: ChannelReport(**result.model_dump(), attempts=[a for a in attempts if a.channel is channel])
        for channel, result in outcome.channels.items()
    }
    return NotificationView(**outcome.model_dump(exclude={"channels"}), channels=channels)


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
