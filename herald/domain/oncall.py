"""On call and escalation: who is on call at an instant, and the pure parts of escalating along a policy.

Shifts are counted on the schedule's wall clock (PagerDuty-style): shift k starts at `rotation.starts_at + k *
shift_hours` local time, so a 24-hour rotation from 09:00 Europe/Berlin hands over at 09:00 local every day and
the shift spanning a DST change lasts 23 or 25 real hours. A wall-clock time is read as the earliest instant
showing it or a later time: a time in a spring-forward gap hands over when the gap ends, one in the repeated
autumn hour at its first occurrence. That reading never runs backwards, so shifts never overlap: every instant
from the first shift on has exactly one member on call. An override covering the instant wins over the rotation
(the last listed, when overrides overlap). Before the first shift, nobody is on call (unless an override says).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from herald.models import ACK_ACTION, ACTIONS_MAX, Action
from herald.models.oncall import EscalationPolicy, Schedule, wall_clock

TARGET_KINDS = ("user", "group", "schedule")


@dataclass(frozen=True)
class Target:
    kind: str  # user, group, schedule
    name: str


def parse_target(value: str) -> Target:
    """`user:ada` -> Target("user", "ada"). The model validated the shape (herald.models.oncall.TARGET_REGEX)."""
    kind, _, name = value.partition(":")
    if kind not in TARGET_KINDS or not name:
        raise ValueError(f"unknown target {value}: must be user:<id>, group:<name> or schedule:<name>")
    return Target(kind, name)


def instant(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of `local`: one with an offset as it is; a wall-clock time in `zone` as the earliest instant
    whose local time is `local` or later (a time in a spring-forward gap: the gap's end; a repeated time: its first)."""
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # In a gap: fold=1 reads it with the offset after the change (an instant before the gap), fold=0 with the offset
    # before (after the gap). The gap's end lies between: the first instant at or after which the local time >= local.
    low, high = local.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= local:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0) if high.microsecond else high


def shift_start(schedule: Schedule, k: int) -> datetime:
    """The UTC instant shift `k` starts (shift 0 at the rotation's starts_at)."""
    zone = ZoneInfo(schedule.time_zone)
    first = wall_clock(schedule.rotation.starts_at, zone)
    return instant(first + timedelta(hours=k * schedule.rotation.shift_hours), zone)


def shift_at(schedule: Schedule, at: datetime) -> int | None:
    """The index of the rotation's shift covering `at` (None before the first)."""
    at = at.astimezone(UTC)
    if at < shift_start(schedule, 0):
        return None
    hours = schedule.rotation.shift_hours
    k = int((at - shift_start(schedule, 0)) / timedelta(hours=hours))
    while k > 0 and shift_start(schedule, k) > at:
        k -= 1
    while shift_start(schedule, k + 1) <= at:
        k += 1
    return k


@dataclass(frozen=True)
class OnCallAt:
    user_id: str | None
    override: bool = False


def on_call(schedule: Schedule, at: datetime) -> OnCallAt:
    """Who is on call at `at`: the last override covering it, else the rotation's member for that shift."""
    zone = ZoneInfo(schedule.time_zone)
    at = at.astimezone(UTC)
    for override in reversed(schedule.overrides):
        if (
            instant(wall_clock(override.starts_at, zone), zone)
            <= at
            < instant(wall_clock(override.ends_at, zone), zone)
        ):
            return OnCallAt(override.user_id, override=True)
    k = shift_at(schedule, at)
    if k is None:
        return OnCallAt(None)
    members = schedule.rotation.members
    return OnCallAt(members[k % len(members)])


# --- escalation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    round: int  # 0 is the first run of the policy, 1.. its repeats
    step: int  # 0-based
    targets: list[str]
    ack_within_seconds: int


def steps_of(policy: EscalationPolicy) -> list[Step]:
    """Every step the policy runs if nobody acks, in order: its steps, then all of them again `repeat` times."""
    return [
        Step(r, i, list(s.targets), s.ack_within_seconds)
        for r in range(policy.repeat + 1)
        for i, s in enumerate(policy.steps)
    ]


def to_notify(resolved: list[str], notified_this_round: set[str]) -> list[str]:
    """The users a step notifies: its resolved targets in order, once each, less those already notified in this
    round (they are still being asked); a repeat round asks everyone again."""
    out: list[str] = []
    for user_id in resolved:
        if user_id not in notified_this_round and user_id not in out:
            out.append(user_id)
    return out


def child_notification_id(parent_id: str, round: int, step: int, user_id: str) -> str:
    """The id of the notification asking `user_id` at one step: stable (a replay starts the same child), unique
    per parent, round, step and user, and an Identifier (at most 128 characters)."""
    base = parent_id if len(parent_id) <= 80 else hashlib.sha256(parent_id.encode()).hexdigest()[:32]
    who = hashlib.sha256(user_id.encode()).hexdigest()[:12]
    return f"{base}.esc{round}-{step}-{who}"


ACK_LABEL = "Acknowledge"


def step_actions(actions: list[Action]) -> list[Action]:
    """What a step's notification offers: the escalated notification's own actions, then "Acknowledge" (the built-in
    `ack`, so every channel shows it: a button, an email link, an SMS number), unless it offers an ack already or has
    no room left (a question's built-in "Seen" is the same ack)."""
    if any(a.id == ACK_ACTION for a in actions) or len(actions) >= ACTIONS_MAX:
        return list(actions)
    return [*actions, Action(id=ACK_ACTION, label=ACK_LABEL)]


def taken_text(by: str, channel: str) -> str:
    """What the others are told once someone acked: "Acknowledged by ada via slack"."""
    return f"Acknowledged by {by} via {channel}"
