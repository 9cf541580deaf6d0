"""Read models: a notification as the API and `herald status` show it, from the workflow and the delivery log."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from temporalio.service import RPCError, RPCStatusCode

from herald.adapters.store import RecordedOutcome, Store
from herald.api.auth import AuthError, Caller, access_problem
from herald.api.errors import ApiError
from herald.models import (
    Action,
    Answer,
    ChannelName,
    ChannelResult,
    DeliveryAttempt,
    GroupDecision,
    GroupDelivery,
    MemberOutcome,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    RefusedAnswer,
    Resolution,
)
from herald.models.oncall import EscalationOutcome
from herald.services.gateway import Gateway

QUERY_TIMEOUT = timedelta(seconds=5)


class ChannelReport(ChannelResult):
    """A channel's result with every attempt from the delivery log."""

    attempts: list[DeliveryAttempt] = Field(default_factory=list)


class _NotificationFields(BaseModel):
    """What both the single view and the audit list show of a notification."""

    notification_id: str
    workflow_id: str
    agent_id: str
    user_id: str
    priority: Priority
    status: NotificationStatus
    duplicate_of: str | None = None
    ops_alert: str | None = None
    held_until: datetime | None = Field(default=None, description="quiet hours held it until then")
    digest_id: str | None = Field(default=None, description="the digest notification that carried it")
    # A question: what it offers, until when, and the answer (polling agents read `status` and `answer`).
    actions: list[Action] = Field(default_factory=list, description="the choices offered (a question)")
    respond_by: datetime | None = None
    answer: Answer | None = Field(default=None, description="the first valid answer (status `answered`)")
    acknowledged: Answer | None = Field(default=None, description="the first ack or snooze")
    refused_answers: list[RefusedAnswer] = Field(default_factory=list, description="answers after the first")
    snoozed_until: datetime | None = Field(default=None, description="not sent: its rule or agent was snoozed")
    silence_id: str | None = Field(default=None, description="not sent: the silence that matched it (`silenced`)")
    resolved: Resolution | None = Field(default=None, description="who resolved it and when (status `resolved`)")
    throttled_channels: list[ChannelName] = Field(
        default_factory=list, description="channels left out of its plan: over their max_per_hour this hour"
    )
    group_id: str | None = Field(
        default=None, description="status grouped: the group's workflow (group/<user>/<agent>/<key>) that sends it"
    )
    group_delivery: GroupDelivery | None = Field(
        default=None,
        description="status grouped, once its group's message went: that message (its id, status and size); "
        "`channels` are then that message's",
    )
    # A notification to a group (user_id `group:<name>`): each member's, and a question's answers and decision.
    group: str | None = Field(default=None, description="the group it was sent to")
    members: dict[str, MemberOutcome] = Field(
        default_factory=dict, description="a group notification: each member's notification, status and channels"
    )
    answers: list[Answer] = Field(
        default_factory=list, description="a question to a group: every member's answer (who, where, what, when)"
    )
    decision: GroupDecision | None = Field(
        default=None, description="a question to a group: the action decided, who chose it, what members were told"
    )
    group_error: str | None = Field(default=None, description="a group notification that failed: why")
    escalation: EscalationOutcome | None = Field(
        default=None,
        description="it named an escalation_policy: each step (when, who was notified, their notifications) and "
        "who acked (by, channel, at)",
    )
    taken_by: Answer | None = Field(
        default=None, description="a step of an escalation: the ack on another person's notification that stopped it"
    )


class NotificationView(_NotificationFields):
    """One notification: its outcome, and each channel with every attempt from the delivery log."""

    channels: dict[ChannelName, ChannelReport]


class NotificationSummary(_NotificationFields):
    """A notification in the audit list: each channel without its attempts (those are one
    `GET /v1/notifications/{id}` away), plus when the outcome was recorded."""

    channels: dict[ChannelName, ChannelResult]
    completed_at: datetime = Field(description="when the outcome was recorded")
    # From the content kept with the first delivery attempt; null when no channel was tried (duplicate, digested...).
    title: str | None = None
    body: str | None = None
    created_at: datetime | None = Field(default=None, description="when the agent created it")


class NotificationPage(BaseModel):
    items: list[NotificationSummary]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page; null at the end")


def build_summary(recorded: RecordedOutcome) -> NotificationSummary:
    content = recorded.content
    return NotificationSummary(
        **recorded.outcome.model_dump(),
        completed_at=recorded.completed_at,
        title=content.title if content else None,
        body=content.body if content else None,
        created_at=content.created_at if content else None,
    )


class InvalidCursor(ValueError):
    """A `cursor` that no page handed out."""


CURSOR_PROBLEM = "is not a cursor from a previous page (pass next_cursor as it came)"


def encode_cursor(completed_at: datetime, notification_id: str) -> str:
    """An opaque page position: where the last item of a page stands in the newest-first order."""
    raw = json.dumps([completed_at.astimezone(UTC).isoformat(), notification_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position in a cursor from `encode_cursor`; InvalidCursor for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, notification_id = json.loads(raw)
        position = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError):
        raise InvalidCursor(CURSOR_PROBLEM) from None
    if not isinstance(notification_id, str) or position.tzinfo is None:
        raise InvalidCursor(CURSOR_PROBLEM)
    return position, notification_id


def page_of(recorded: list[RecordedOutcome], limit: int) -> NotificationPage:
    """A page from up to `limit + 1` rows: the extra row only says that another page follows."""
    items = recorded[:limit]
    more = len(recorded) > limit and bool(items)
    cursor = encode_cursor(items[-1].completed_at, items[-1].outcome.notification_id) if more else None
    return NotificationPage(items=[build_summary(r) for r in items], next_cursor=cursor)


def listing_scope(caller: Caller, user_id: str | None, agent_id: str | None) -> tuple[str | None, str | None]:
    """The (user_id, agent_id) filters a caller's list is held to, or the 403 to answer.

    The admin (and anyone, with auth off) lists as asked. A user token lists its own user's notifications:
    no `user_id` means its own, another user's is a 403. An agent key likewise, by `agent_id`.
    """
    if caller.kind == "user":
        problem = access_problem(caller, users=[user_id or caller.subject or ""], field="user_id")
        user_id = caller.subject
    elif caller.kind == "agent":
        problem = access_problem(caller, agents=[agent_id or caller.subject or ""], field="agent_id")
        agent_id = caller.subject
    else:
        problem = None
    if isinstance(problem, AuthError):
        raise problem
    return user_id, agent_id


async def list_notifications(
    store: Store,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    status: NotificationStatus | None = None,
    priority: Priority | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> NotificationPage:
    """One page of recorded outcomes, newest first (in-flight notifications appear once they finish)."""
    recorded = await store.notifications.list_outcomes(
        user_id=user_id,
        agent_id=agent_id,
        status=status,
        priority=priority,
        since=since,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    return page_of(recorded, limit)


def notification_not_found(notification_id: str) -> ApiError:
    """The one answer for an id that names no notification and for one the caller may not see: the same status
    and body, so that no caller learns which ids exist."""
    return ApiError(404, "not_found", f"no notification {notification_id}", "notification_id")


def check_visible(caller: Caller, notification_id: str, user_id: str, agent_id: str) -> None:
    """Who may see a notification: its user, its sending agent and the admin. Anyone else is told it doesn't exist
    (`notification_not_found`), never that it is someone else's."""
    problem = access_problem(caller, users=[user_id], agents=[agent_id], field="notification_id")
    if problem is None:
        return
    if problem.status == 401:
        raise problem
    raise notification_not_found(notification_id)


class TemporalUnavailable(Exception):
    """Temporal could not be asked about a notification that has no recorded outcome yet."""


def build_view(outcome: NotificationOutcome, attempts: list[DeliveryAttempt]) -> NotificationView:
    channels = {
        channel: ChannelReport(**result.model_dump(), attempts=[a for a in attempts if a.channel is channel])
        for channel, result in outcome.channels.items()
    }
    return NotificationView(**outcome.model_dump(exclude={"channels"}), channels=channels)


async def load_notification(store: Store, client: Gateway, notification_id: str) -> NotificationView | None:
    """The recorded outcome if the notification finished, else the live state from its workflow; None if unknown."""
    outcome = await store.notifications.get_outcome(notification_id)
    if outcome is None:
        try:
            outcome = await client.status(notification_id, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise TemporalUnavailable(f"Temporal did not answer ({exc.status.name})") from exc
    if outcome.actions:  # a question: answers refused after it finished are kept in the store
        refused = await store.answers.refusals(notification_id)
        outcome = outcome.model_copy(update={"refused_answers": [*outcome.refused_answers, *refused]})
    return build_view(outcome, await store.notifications.attempts(notification_id))
