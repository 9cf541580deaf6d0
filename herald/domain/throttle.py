"""Throttling: at most `max_per_hour` notifications an hour from one agent to one person, overall and per channel.

Pure, so the preference activity's decision is tested without Temporal or a store; the store only counts
(herald/adapters/store/throttle.py: it locks the counters of one window, hands their values to `decide`, and
adds what `decide` claims, in one transaction, so concurrent notifications never both take the last slot).

- The window is the clock hour, UTC: [HH:00, HH+1:00). A new hour starts from zero, so across an hour's turn a
  burst may send up to twice the limit within sixty minutes; in exchange the "N more" message has a fixed time,
  the hour's end, and counting is one row per (user, agent, scope, hour).
- What counts: a notification that would be sent now (not digested by priority, not held by quiet hours, not
  snoozed, with a planned channel), once per notification, against the agent-wide limit and against each planned
  channel's own limit. A channel's count is of the notifications planned to it (a fallback to it does not count).
- Critical notifications and questions are never throttled and never counted.
- Over the agent-wide limit, or with every planned channel over its own: throttled (not sent now). Otherwise the
  channels over their limit are left out of the plan and the others deliver.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from herald.domain.dedup import own_key
from herald.domain.digest import digest_body
from herald.models import (
    AgentNotification,
    ChannelName,
    DigestItem,
    EnabledChannels,
    Preferences,
    Priority,
)

HOUR_SECONDS = 3600.0
AGENT_SCOPE = "*"  # the agent-wide counter; a channel's counter is its name


@dataclass(frozen=True)
class Limits:
    """The merged limits for one agent: agent-wide, and per channel (only the channels that have one)."""

    agent: int | None = None
    channels: Mapping[ChannelName, int] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return self.agent is not None or bool(self.channels)


@dataclass(frozen=True)
class Decision:
    """What the throttle makes of one notification: throttled (not sent now), or sent with `dropped` channels
    left out; `claims` are the counters it takes a slot of (none when throttled: it is not sent now)."""

    throttled: bool = False
    dropped: tuple[ChannelName, ...] = ()
    claims: tuple[str, ...] = ()


def merge_limits(preferences: Preferences, agent_id: str) -> Limits:
    """The agent's entry over the default, field by field: its `max_per_hour`, and each channel's."""
    agent = preferences.agents.get(agent_id)
    overall = agent.max_per_hour if agent is not None else None
    if overall is None:
        overall = preferences.default.max_per_hour
    channels: dict[ChannelName, int] = {}
    for channel in ChannelName:
        value = agent.setting(channel).max_per_hour if agent is not None else None
        if value is None:
            value = preferences.default.setting(channel).max_per_hour
        if value is not None:
            channels[channel] = value
    return Limits(agent=overall, channels=channels)


def window(now: datetime, seconds: float = HOUR_SECONDS) -> tuple[datetime, datetime]:
    """The window `now` falls in, [start, end): the clock hour (UTC) by default; `seconds` for tests and demos
    (HERALD_THROTTLE_WINDOW_SECONDS), counted from the epoch as the hour is."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not seconds > 0:
        raise ValueError("seconds must be positive")
    start = datetime.fromtimestamp(math.floor(now.timestamp() / seconds) * seconds, UTC)
    end = start + timedelta(seconds=seconds)
    if end <= now:  # float rounding at a boundary
        start, end = end, end + timedelta(seconds=seconds)
    return start, end


def planned(routed: EnabledChannels, channels: Sequence[ChannelName]) -> list[ChannelName]:
    """The requested channels the route leaves on, in order: what the plan would send to."""
    return [c for c in channels if routed.enabled.get(c, False)]


def applies(routed: EnabledChannels, priority: Priority, asks: bool, channels: Sequence[ChannelName]) -> bool:
    """Whether the throttle looks at this notification at all: one that would be sent now (not critical, not a
    question, not digested, held or snoozed, and with a channel to go to)."""
    if priority is Priority.critical or asks:
        return False
    if routed.digest or routed.hold_until is not None or routed.snoozed_until is not None:
        return False
    return bool(planned(routed, channels))


def scopes(limits: Limits, channels: Sequence[ChannelName]) -> list[str]:
    """The counters a notification to `channels` is measured against, sorted (the order the store locks them)."""
    wanted = [AGENT_SCOPE] if limits.agent is not None else []
    wanted += [c.value for c in channels if c in limits.channels]
    return sorted(set(wanted))


def decide(limits: Limits, counts: Mapping[str, int], channels: Sequence[ChannelName]) -> Decision:
    """The throttle's decision from this window's counts (missing: zero) for a notification planned to `channels`.

    Over the agent-wide limit: throttled. Else each channel at its limit is dropped; none left: throttled.
    A notification that is sent claims a slot of the agent-wide counter (when limited) and of each kept channel's.
    """
    if limits.agent is not None and counts.get(AGENT_SCOPE, 0) >= limits.agent:
        return Decision(throttled=True)
    dropped = tuple(c for c in channels if c in limits.channels and counts.get(c.value, 0) >= limits.channels[c])
    kept = [c for c in channels if c not in dropped]
    if not kept:
        return Decision(throttled=True, dropped=dropped)
    return Decision(dropped=dropped, claims=tuple(scopes(limits, kept)))


def apply(routed: EnabledChannels, decision: Decision, until: datetime, digest_on: bool) -> EnabledChannels:
    """The route with the decision in it: dropped channels off (no fallback takes them either); a throttled
    notification to the digest when the user has one, else marked for the hour's "N more" message at `until`."""
    if not decision.throttled and not decision.dropped:
        return routed
    enabled = {c: on and c not in decision.dropped for c, on in routed.enabled.items()}
    update: dict[str, object] = {"enabled": enabled, "throttled_channels": list(decision.dropped)}
    if decision.throttled:
        update |= {"throttled": True, "digest": digest_on, "throttle_until": until}
    return routed.model_copy(update=update)


def summary_workflow_id(user_id: str, agent_id: str) -> str:
    """`throttle/<user_id>/<agent_id>`: the workflow that holds an hour's throttled notifications for a user
    without a digest and sends the "N more" message (ids hold no `/`, so the two parts stay apart)."""
    return f"throttle/{user_id}/{agent_id}"


def summary_title(agent_id: str, count: int) -> str:
    return f"{count} more from {agent_id}"


def summary_notification(
    user_id: str, agent_id: str, summary_id: str, items: list[DigestItem], now: datetime
) -> AgentNotification:
    """The one message that stands for an hour's throttled notifications when the user has no digest: "N more from
    <agent>", listing them as the digest does, by email (as a digest is), from the agent itself (so the person's
    switches for that agent apply). It dedups only against itself."""
    return AgentNotification(
        notification_id=summary_id,
        agent_id=agent_id,
        user_id=user_id,
        title=summary_title(agent_id, len(items)),
        body=digest_body(items),
        priority=Priority.medium,
        channels=[ChannelName.email],
        metadata={"throttled": len(items)},
        created_at=now,
        dedup_key=own_key("throttle", summary_id),
    )
