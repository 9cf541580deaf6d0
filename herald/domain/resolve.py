"""Resolving, decided without Temporal: which notifications an agent's resolve finds, which of them are still
open, and what the reply says. The workflow's `resolve` validator and HeraldClient.resolve call these.

An agent resolves by the `dedup_key` it sent (`POST /v1/notifications/resolve {agent_id, dedup_key}`). The key is
the agent's own text, so Temporal's visibility, which indexes search attributes in plain text, holds only a hash
of it (`resolve_key`), in the `HeraldResolveKey` search attribute.
"""

from __future__ import annotations

import hashlib

from herald.models import AgentNotification, NotificationOutcome, NotificationStatus, ResolvedNotice

WORKFLOW_TYPE = "NotificationWorkflow"
# A resolve names at most this many open notifications (one per user the agent alerted with that key, usually).
RESOLVE_MAX = 1000


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


def resolved_notice(notification: AgentNotification, outcome: NotificationOutcome) -> ResolvedNotice:
    """What the resolved run hands `announce_resolved`: whose it is, its title, and where it was delivered."""
    return ResolvedNotice(
        notification_id=notification.notification_id,
        user_id=notification.user_id,
        agent_id=notification.agent_id,
        priority=notification.priority,
        title=notification.title,
        by=outcome.resolved.by if outcome.resolved is not None else "",
        delivered=outcome.delivered_channels,
    )


def resolved_frame(notification_id: str) -> dict[str, str]:
    """The WebSocket frame that tells a live inbox a notification was resolved (acked like any frame)."""
    return {"type": "resolved", "notification_id": notification_id}
