"""Resolving, decided without Temporal: which notifications an agent's resolve finds, which of them are still
open, and what the reply says. The workflow's `resolve` validator and HeraldClient.resolve call these.

An agent resolves by the `dedup_key` it sent (`POST /v1/notifications/resolve {agent_id, dedup_key}`). The key is
the agent's own text, so Temporal's visibility, which indexes search attributes in plain text, holds only a hash
of it (`resolve_key`), in the `HeraldResolveKey` search attribute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from herald.models import (
    TITLE_MAX_CHARS,
    AgentNotification,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    Resolution,
    ResolvedNotice,
)

WORKFLOW_TYPE = "NotificationWorkflow"
# A resolve names at most this many open notifications (one per user the agent alerted with that key, usually).
RESOLVE_MAX = 1000
# Unless the user says otherwise (`notify_resolved`), a resolve is told by email and SMS for high and critical only.
DEFAULT_NOTIFY_RESOLVED = Priority.high
# The push channel's provider id for a frame a live WebSocket acked (herald/adapters/channels/push.py); any other
# delivered push went by Web Push.
LIVE_PUSH_PREFIX = "ws:"
# Channels whose delivered message is edited in place (its buttons go), and those told by a message of their own.
EDITED_CHANNELS = (ChannelName.slack, ChannelName.telegram)
TOLD_CHANNELS = (ChannelName.email, ChannelName.sms)


def resolve_key(agent_id: str, dedup_key: str) -> str:
    """sha256 of (agent, dedup_key): what the `HeraldResolveKey` search attribute holds. Scoped to the agent, so one
    agent's resolve never reaches another's notifications; not to the user, so one resolve reaches everyone the
    agent alerted with that key."""
    # An agent id never holds a NUL, and the key comes last: no two (agent, key) pairs join the same.
    return hashlib.sha256(f"resolve\x00{agent_id}\x00{dedup_key}".encode()).hexdigest()


def open_query(agent_id: str, dedup_key: str) -> str:
    """Temporal's visibility query for the running notification workflows of (agent, dedup_key).

    Agent ids are identifiers (letters, digits and `._:@-`: no quote can occur) and the key is a hex digest, so
    both go into the query as they are.
    """
    return (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' "
        f"AND HeraldAgentId = '{agent_id}' AND HeraldResolveKey = '{resolve_key(agent_id, dedup_key)}'"
    )


# The endings a resolve still reaches after the notification's workflow has completed: something was (or may have
# been) delivered and nothing has closed it. A question ends `answered` or `expired` (decided: closed); an ending that
# delivered nothing (failed, no_channel, digested, throttled, silenced, suppressed_duplicate) has nothing to update.
ENDED_OPEN = (
    NotificationStatus.delivered,
    NotificationStatus.partially_delivered,
    NotificationStatus.confirmed,
    NotificationStatus.unconfirmed,
)
# The workflow that resolves one of those, once: `resolve/<notification_id>`, its id never reused.
RESOLVE_ENDED_PREFIX = "resolve/"


def ended_open(status: str | None) -> bool:
    """Whether a completed notification workflow whose HeraldStatus is `status` still takes a resolve."""
    return status in {s.value for s in ENDED_OPEN}


def resolve_ended_id(notification_id: str) -> str:
    return f"{RESOLVE_ENDED_PREFIX}{notification_id}"


def ended_query(agent_id: str, dedup_key: str) -> str:
    """Temporal's visibility query for the completed notification workflows of (agent, dedup_key) that ended
    delivered (ENDED_OPEN: their HeraldStatus, upserted as they ended). Quoted as `open_query` is."""
    statuses = ", ".join(f"'{s.value}'" for s in ENDED_OPEN)
    return (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Completed' "
        f"AND HeraldAgentId = '{agent_id}' AND HeraldResolveKey = '{resolve_key(agent_id, dedup_key)}' "
        f"AND HeraldStatus IN ({statuses})"
    )


def ended_not_open(outcome: NotificationOutcome | None) -> str | None:
    """Why a notification whose workflow has ended takes no resolve (None: it ended delivered, not yet resolved,
    and resolves). Its recorded outcome is the truth: visibility only found it."""
    if outcome is None:
        return "not open: no outcome recorded (past the store's retention)"
    if outcome.resolved is not None:
        return f"already resolved by {outcome.resolved.by} at {outcome.resolved.at.isoformat()}"
    if outcome.status not in ENDED_OPEN:
        return f"not open: it has ended ({outcome.status.value})"
    return None


def resolved_outcome(outcome: NotificationOutcome, resolution: Resolution) -> NotificationOutcome:
    """The recorded outcome of an ended notification, resolved: status `resolved` and who and when; what each
    channel did stays as it was (every send had ended)."""
    return outcome.model_copy(update={"status": NotificationStatus.resolved, "resolved": resolution})


def ended_notice(outcome: NotificationOutcome, title: str, plan: ResolvePlan) -> ResolvedNotice:
    """What `announce_resolved` is handed for an ended notification: as `resolved_notice`, from its recorded outcome
    and kept title instead of the running workflow's notification."""
    return ResolvedNotice(
        notification_id=outcome.notification_id,
        workflow_id=outcome.workflow_id,
        user_id=outcome.user_id,
        agent_id=outcome.agent_id,
        priority=outcome.priority,
        title=title or outcome.notification_id,
        by=outcome.resolved.by if outcome.resolved is not None else "",
        at=outcome.resolved.at if outcome.resolved is not None else None,
        delivered=outcome.delivered_channels,
        replace_push=plan.replace_push,
        tell=plan.tell,
    )


def not_open(outcome: NotificationOutcome, closing: bool) -> str | None:
    """Why this notification takes no resolve (None: it is open and resolves).

    Open means still on its way: being delivered, held for quiet hours, retrying, escalating, or a question waiting
    for its answer (its status is `pending`). One recording its outcome (`closing`), already resolved, or that has
    reached its ending (answered, delivered, ...) while its workflow finishes is not open.
    """
    if outcome.resolved is not None:
        return f"already resolved by {outcome.resolved.by} at {outcome.resolved.at.isoformat()}"
    if closing or outcome.status is not NotificationStatus.pending:
        return f"not open: it has ended ({outcome.status.value})"
    return None


def resolved_message(agent_id: str, resolved: int) -> str:
    """The reply's `message`: how many were resolved, or that nothing was open (a no-op)."""
    if resolved == 0:
        return f"nothing to resolve: {agent_id} has no open notification with that dedup_key"
    return f"resolved {resolved} open notification{'' if resolved == 1 else 's'} of {agent_id}"


def tells_resolved(floor: Priority | None, priority: Priority) -> bool:
    """Whether a resolve of a notification of `priority` is told by email and SMS, for the user's merged
    `notify_resolved` (`floor`: the lowest priority told; None: never)."""
    return floor is not None and priority.rank >= floor.rank


@dataclass(frozen=True)
class ResolvePlan:
    """Where a resolved notification's end is told, beside the live inbox's `resolved` frame (always sent)."""

    replace_push: bool = False  # it reached a browser by Web Push: a push with the same Topic replaces the shown one
    edit: list[ChannelName] = field(default_factory=list)  # Slack, Telegram: the message edited, its buttons gone
    tell: list[ChannelName] = field(default_factory=list)  # email, SMS: a short `Resolved: <title>` of their own


def resolve_plan(channels: Mapping[ChannelName, ChannelResult], notify_resolved: bool) -> ResolvePlan:
    """Which channels hear of the resolve, from what each delivered: only a channel that delivered has something to
    update. Web Push and the chats are updated in place whatever the preference (nothing new arrives: what is shown
    changes); email and SMS would be a new message, so only when the user's `notify_resolved` allows it
    (`notify_resolved`: its verdict for this notification's priority, from routing)."""
    delivered = {c: r for c, r in channels.items() if r.status is ChannelStatus.delivered}
    push = delivered.get(ChannelName.push)
    replace_push = push is not None and not (push.provider_message_id or "").startswith(LIVE_PUSH_PREFIX)
    return ResolvePlan(
        replace_push=replace_push,
        edit=[c for c in EDITED_CHANNELS if c in delivered],
        tell=[c for c in TOLD_CHANNELS if c in delivered] if notify_resolved else [],
    )


def resolved_notice(
    notification: AgentNotification, outcome: NotificationOutcome, plan: ResolvePlan | None = None
) -> ResolvedNotice:
    """What the resolved run hands `announce_resolved`: whose it is, its title, where it was delivered, and what of
    that to update (`plan`)."""
    plan = plan or ResolvePlan()
    return ResolvedNotice(
        notification_id=notification.notification_id,
        workflow_id=outcome.workflow_id,
        user_id=notification.user_id,
        agent_id=notification.agent_id,
        priority=notification.priority,
        title=notification.title,
        by=outcome.resolved.by if outcome.resolved is not None else "",
        at=outcome.resolved.at if outcome.resolved is not None else None,
        delivered=outcome.delivered_channels,
        replace_push=plan.replace_push,
        tell=plan.tell,
    )


def resolved_title(title: str) -> str:
    """`Resolved: <title>`, cut to a title's length."""
    text = f"Resolved: {title}"
    return text if len(text) <= TITLE_MAX_CHARS else text[: TITLE_MAX_CHARS - 1] + "…"


def resolved_notification(notice: ResolvedNotice) -> AgentNotification:
    """The short notification that tells a channel of the resolve: the same id, agent, user and priority (so its
    links lead to the notification), `Resolved: <title>`, no actions."""
    return AgentNotification(
        notification_id=notice.notification_id,
        agent_id=notice.agent_id,
        user_id=notice.user_id,
        priority=notice.priority,
        title=resolved_title(notice.title),
        body=f"No longer needs your attention: resolved by {notice.by}." if notice.by else "",
        **({"created_at": notice.at} if notice.at is not None else {}),
    )


def resolved_frame(notification_id: str) -> dict[str, str]:
    """The WebSocket frame that tells a live inbox a notification was resolved (acked like any frame)."""
    return {"type": "resolved", "notification_id": notification_id}
