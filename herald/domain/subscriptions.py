"""Subscriptions' decisions, pure: which events an outcome or a heartbeat's miss makes, who receives them, what a
failure does, and the subscription's state. No I/O (docs/design.md).

An event carries ids, the channel, the status and times only: never a title, a body, an address or an answer's
text (what the person chose is `action_id`, an id the agent itself offered).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from herald.domain.bounds import bound_text
from herald.models import (
    SUBSCRIPTION_ERROR_MAX_CHARS,
    NotificationOutcome,
    NotificationStatus,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventType,
    SubscriptionInput,
    SubscriptionState,
)

# The notification statuses that end in an event of their own (beyond `delivered` and `acknowledged`).
_STATUS_EVENTS: dict[str, SubscriptionEventType] = {
    NotificationStatus.failed.value: SubscriptionEventType.failed,
    NotificationStatus.answered.value: SubscriptionEventType.answered,
    NotificationStatus.resolved.value: SubscriptionEventType.resolved,
    NotificationStatus.silenced.value: SubscriptionEventType.silenced,
    NotificationStatus.digested.value: SubscriptionEventType.digested,
    NotificationStatus.grouped.value: SubscriptionEventType.grouped,
}
# How many ids the workflow remembers to drop a repeated signal (a retried record_outcome).
RECENT_IDS = 200


def _at(when: datetime | None, fallback: datetime) -> str:
    return (when or fallback).astimezone(UTC).isoformat()


def outcome_events(outcome: NotificationOutcome, now: datetime) -> list[SubscriptionEvent]:
    """The events a recorded outcome makes, in the order they happened: delivered (a channel took it), then
    acknowledged (the first ack), then the status's own event (failed, answered, resolved, silenced, digested,
    grouped). `id` is `<notification_id>/<type>`: one per notification and type, whoever records it again."""
    base = {
        "notification_id": outcome.notification_id,
        "agent_id": outcome.agent_id,
        "user_id": outcome.user_id,
        "priority": outcome.priority.value,
        "status": outcome.status.value,
        "rule": outcome.rule,
    }
    delivered = outcome.delivered_channels
    made: list[tuple[SubscriptionEventType, dict[str, str | None]]] = []
    if delivered:
        made.append((SubscriptionEventType.delivered, {"channel": delivered[0].value, "at": _at(None, now)}))
    if outcome.acknowledged is not None:
        ack = outcome.acknowledged
        made.append(
            (SubscriptionEventType.acknowledged, {"channel": ack.channel.value, "at": _at(ack.answered_at, now)})
        )
    own = _STATUS_EVENTS.get(outcome.status.value)
    if own is SubscriptionEventType.answered and outcome.answer is not None:
        answer = outcome.answer
        made.append(
            (own, {"channel": answer.channel.value, "action_id": answer.action_id, "at": _at(answer.answered_at, now)})
        )
    elif own is SubscriptionEventType.resolved and outcome.resolved is not None:
        made.append((own, {"channel": None, "at": _at(outcome.resolved.at, now)}))
    elif own is SubscriptionEventType.silenced:
        made.append((own, {"channel": None, "silence_id": outcome.silence_id, "at": _at(None, now)}))
    elif own is SubscriptionEventType.digested:
        made.append((own, {"channel": None, "digest_id": outcome.digest_id, "at": _at(None, now)}))
    elif own is SubscriptionEventType.grouped:
        made.append((own, {"channel": None, "group_id": outcome.group_id, "at": _at(None, now)}))
    elif own is not None:
        failed = [c.value for c, r in outcome.channels.items() if r.status.value == "failed"]
        made.append((own, {"channel": failed[0] if failed else None, "at": _at(None, now)}))
    return [
        SubscriptionEvent(
            id=f"{outcome.notification_id}/{kind.value}",
            type=kind,
            timestamp=now.astimezone(UTC),
            data={**base, **data},
            agent_id=outcome.agent_id,
        )
        for kind, data in made
    ]


def heartbeat_missed_event(workflow_id: str, occurrence: str, now: datetime) -> SubscriptionEvent | None:
    """`heartbeat.missed` for the heartbeat `heartbeat/<agent_id>/<name>` (None for any other id); `occurrence`
    names this miss the same way on every retry of the step that tells it (its run and activity ids)."""
    parts = workflow_id.split("/")
    if len(parts) != 3 or parts[0] != "heartbeat":
        return None
    _, agent_id, name = parts
    at = now.astimezone(UTC)
    return SubscriptionEvent(
        id=f"{workflow_id}/missed/{occurrence}",
        type=SubscriptionEventType.heartbeat_missed,
        timestamp=at,
        data={"agent_id": agent_id, "heartbeat": name, "channel": None, "status": "missed", "at": at.isoformat()},
        agent_id=agent_id,
    )


def wants(subscription: Subscription, event: SubscriptionEvent) -> bool:
    """Whether the subscription receives the event: enabled, of a type it names, and its agent's (if it names one)."""
    if not subscription.enabled or event.type not in subscription.events:
        return False
    return subscription.agent_id is None or subscription.agent_id == event.agent_id


def receivers(subscriptions: Iterable[Subscription], event: SubscriptionEvent) -> list[str]:
    """The names of the subscriptions that receive the event."""
    return [s.name for s in subscriptions if wants(s, event)]


def after_failure(failures: int, max_failures: int) -> tuple[int, bool]:
    """One more event failed after its retries: the failures in a row, and whether that disables the subscription."""
    failures += 1
    return failures, failures >= max_failures


def bounded_error(message: str) -> str:
    """A failure as kept: one line, at most SUBSCRIPTION_ERROR_MAX_CHARS."""
    return bound_text(" ".join(message.split()), SUBSCRIPTION_ERROR_MAX_CHARS) or "failed"


def remember(recent: list[str], event_id: str) -> list[str]:
    """The ids posted lately, the newest last, at most RECENT_IDS."""
    return [*recent, event_id][-RECENT_IDS:]


def state_of(subscription: Subscription) -> SubscriptionState:
    return SubscriptionState.enabled if subscription.enabled else SubscriptionState.disabled


def saved(name: str, body: SubscriptionInput, owner: str, now: datetime, before: Subscription | None) -> Subscription:
    """The subscription a PUT makes: enabled again with no failures (a fix of a disabled subscriber is a PUT), its
    creation time kept when it replaces one."""
    return Subscription(
        name=name,
        url=body.url,
        events=list(dict.fromkeys(body.events)),
        agent_id=body.agent_id,
        owner=owner,
        enabled=True,
        failures=0,
        last_error=None,
        disabled_at=None,
        created_at=before.created_at if before is not None else now,
        updated_at=now,
    )
