"""From an event's matched rules to the notifications they would send: pure, so it is tested without Temporal.

Notification ids derive from (agent, event, rule, user): the same event sent twice names the same
notifications, so a retried emit can never start a second copy of a notification. The agent is part of it
because event ids are the agent's own: two agents may both send `evt-1`, and a rule for every agent (`*`)
must then fire for each of them, not once for whichever came first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from herald.domain.dedup import own_key
from herald.domain.rules import RuleBook
from herald.models import (
    AgentEvent,
    AgentNotification,
    Clearing,
    FiredRule,
    Firing,
    FiringPlan,
    MonitorState,
    RememberedFiring,
)

# After its last event, a monitor lingers this long even with no cooldown running, then completes.
MONITOR_LINGER = timedelta(minutes=5)
# How long the monitor remembers what a rule with `resolve: true` fired, waiting for the event that clears it. A
# rule's notification is open at most this long (quiet hours hold one for at most 24 h, then its retries and a
# critical escalation): a clearing event later finds it ended, and a resolve would be a no-op.
RESOLVE_MEMORY = timedelta(hours=25)
# The notifications remembered per scope (each firing of a rule adds one per user): the newest are kept.
REMEMBERED_MAX = 200


def notification_id_for(agent_id: str, event_id: str, rule: str, user_id: str) -> str:
    return hashlib.sha256(f"{agent_id}\x00{event_id}\x00{rule}\x00{user_id}".encode()).hexdigest()[:32]


def match_event(book: RuleBook, event: AgentEvent) -> list[Firing]:
    """The rendered firings of every rule the event matches; empty means nothing to send (no Temporal work)."""
    return [rule.firing(event.agent_id, event.metrics) for rule in book.matching(event.agent_id, event.metrics)]


def clearing_rules(book: RuleBook, event: AgentEvent) -> list[Clearing]:
    """The rules with `resolve: true` the event makes false (it holds every metric their condition names), each with
    the dedup_key rendered for the event: the cooldown scope whose notifications resolve."""
    return [
        Clearing(rule=rule.name, cooldown_key=rule.dedup_key_for(event.agent_id, event.metrics))
        for rule in book.clearing(event.agent_id, event.metrics)
    ]


def plan_firings(agent_id: str, event_id: str, firings: Iterable[Firing], now: datetime) -> list[FiringPlan]:
    """One plan per matched rule, with one notification per target user.

    A rule's notification dedups per firing (its own key): the rule's cooldown is its dedup, decided before
    the event's answer says "fired", so a firing the cooldown let through is never suppressed afterwards by
    the content window. A retried event is held by the notification ids instead. The rule's rendered
    `dedup_key` scopes its cooldown (`cooldown_scope`): the rule cools down per key.
    """
    return [
        FiringPlan(
            rule=firing.rule,
            cooldown_seconds=firing.cooldown_seconds,
            cooldown_key=firing.dedup_key,
            resolve=firing.resolve,
            notifications=[
                *(_notification(agent_id, event_id, firing, user_id, now) for user_id in firing.user_ids),
                *(_notification(agent_id, event_id, firing, None, now, group) for group in firing.groups),
            ],
        )
        for firing in firings
    ]


def _notification(
    agent_id: str, event_id: str, firing: Firing, user_id: str | None, now: datetime, group: str | None = None
) -> AgentNotification:
    """The firing's notification to one user, or to one group (`user_id` None)."""
    recipient = user_id if user_id is not None else f"group:{group}"
    notification_id = notification_id_for(agent_id, event_id, firing.rule, recipient)
    return AgentNotification(
        notification_id=notification_id,
        agent_id=agent_id,
        user_id=user_id,
        group=group,
        title=firing.title,
        body=firing.body,
        priority=firing.priority,
        channels=firing.channels,
        dedup_key=own_key("firing", notification_id),
        metadata=firing.metadata,
        created_at=now,
        group_key=firing.group_key,
        group_wait_seconds=firing.group_wait_seconds,
        group_interval_seconds=firing.group_interval_seconds,
        escalation_policy=firing.escalation_policy,
    )


def split_by_cooldown(plans: Iterable[FiringPlan]) -> tuple[list[FiringPlan], list[FiringPlan]]:
    """(plans that go to `monitor/<agent_id>`, plans whose notifications the client starts itself).

    The monitor exists to own cooldowns: it serialises a rule's firings across events, API processes and
    workers. A rule without a cooldown fires on every match and needs no shared state, so routing it through
    the monitor costs only latency (its workflow task plus a child start). Skipping it loses no safety: the
    notification ids derive from (agent, event, rule, user), so a retried event names workflows that already
    exist.

    A rule with `resolve: true` goes to the monitor whatever its cooldown: the monitor remembers what it fired, to
    resolve it when an event clears the rule.
    """
    monitored: list[FiringPlan] = []
    direct: list[FiringPlan] = []
    for plan in plans:
        (monitored if plan.cooldown_seconds > 0 or plan.resolve else direct).append(plan)
    return monitored, direct


def in_plan_order(plans: Iterable[FiringPlan], fired: Iterable[FiredRule]) -> list[FiredRule]:
    """The firings of both routes in the order the event's rules matched (each route answers for its own)."""
    order: dict[str, int] = {}
    for index, plan in enumerate(plans):
        order.setdefault(plan.rule, index)
    return sorted(fired, key=lambda f: order.get(f.rule, len(order)))


def cooldown_scope(plan: FiringPlan) -> str:
    """What a plan's cooldown holds: the rule, or the rule for one rendered dedup_key (`<rule>/<key>`).

    Rule names never contain `/`, so a scoped name never equals another rule's.
    """
    return plan.rule if plan.cooldown_key is None else f"{plan.rule}/{plan.cooldown_key}"


def clearing_scope(clearing: Clearing) -> str:
    """The cooldown scope a clearing event resolves (the scope `cooldown_scope` gave the firings it clears)."""
    return clearing.rule if clearing.cooldown_key is None else f"{clearing.rule}/{clearing.cooldown_key}"


def remember_firing(state: MonitorState, scope: str, notification_ids: Iterable[str], now: datetime) -> None:
    """Remember a resolving rule's notifications under its scope, until RESOLVE_MEMORY after this firing."""
    known = state.resolvable.get(scope)
    ids = list(known.notification_ids) if known is not None else []
    ids.extend(n for n in notification_ids if n not in ids)
    state.resolvable[scope] = RememberedFiring(notification_ids=ids[-REMEMBERED_MAX:], until=now + RESOLVE_MEMORY)


def take_resolvable(state: MonitorState, scope: str, now: datetime) -> list[str]:
    """The notifications a clearing event resolves, forgotten as it takes them (a later event clears nothing more)."""
    known = state.resolvable.pop(scope, None)
    return list(known.notification_ids) if known is not None and now < known.until else []


def cooling(state: MonitorState, rule: str, now: datetime) -> datetime | None:
    """Until when `rule` is held by its cooldown, or None when it may fire now."""
    until = state.cooling_until.get(rule)
    return until if until is not None and now < until else None


def record_firing(state: MonitorState, rule: str, cooldown_seconds: int, now: datetime) -> None:
    state.cooling_until[rule] = now + timedelta(seconds=cooldown_seconds)


def undo_firing(
    state: MonitorState, scope: str, cooldown_seconds: int, fired_at: datetime, before: datetime | None
) -> None:
    """Take back a firing that started nothing (every notification existed: a retried event), unless another
    firing of the scope has moved its cooldown since."""
    if state.cooling_until.get(scope) != fired_at + timedelta(seconds=cooldown_seconds):
        return
    if before is None:
        state.cooling_until.pop(scope, None)
    else:
        state.cooling_until[scope] = before


def pruned(state: MonitorState, now: datetime) -> MonitorState:
    """The state without cooldowns that have ended: what continue-as-new carries forward."""
    live = {rule: until for rule, until in state.cooling_until.items() if until > now}
    remembered = {scope: known for scope, known in state.resolvable.items() if known.until > now}
    return state.model_copy(update={"cooling_until": live, "resolvable": remembered})


def quiet_at(state: MonitorState) -> datetime | None:
    """When the monitor has nothing left to remember: every cooldown over, every remembered firing of a resolving rule
    past RESOLVE_MEMORY, and a while after the last event."""
    times = [*state.cooling_until.values(), *(known.until for known in state.resolvable.values())]
    if state.last_event_at is not None:
        times.append(state.last_event_at + MONITOR_LINGER)
    return max(times) if times else None
