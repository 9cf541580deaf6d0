"""Pure channel planning: which channels to use, in what order to fall back, and what the result means.

Deterministic and free of I/O, so the workflow can call it directly and tests need no Temporal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from herald.errors import PUSH_UNREACHED
from herald.models import (
    AgentNotification,
    ChannelName,
    EnabledChannels,
    NotificationStatus,
    Preferences,
    Priority,
)

SMS_MIN_PRIORITY = Priority.high

Enabled = Mapping[ChannelName, bool]


def merge_preferences(preferences: Preferences, agent_id: str) -> dict[ChannelName, bool]:
    """The agent's entry merged over the default, channel by channel; a channel set nowhere is enabled."""
    agent = preferences.agents.get(agent_id)
    merged: dict[ChannelName, bool] = {}
    for channel in ChannelName:
        value = agent.get(channel) if agent is not None else None
        if value is None:
            value = preferences.default.get(channel)
        merged[channel] = True if value is None else value
    return merged


def channel_allowed(channel: ChannelName, priority: Priority, enabled: Enabled) -> bool:
    """A channel may carry a notification if the user left it on and, for SMS, the priority is high enough."""
    if not enabled.get(channel, True):
        return False
    return not (channel is ChannelName.sms and priority.rank < SMS_MIN_PRIORITY.rank)


def plan_channels(notification: AgentNotification, enabled: Enabled) -> list[ChannelName]:
    """The requested channels the user allows, in the order the agent gave them. Empty means no_channel."""
    return [c for c in notification.channels if channel_allowed(c, notification.priority, enabled)]


def fallback_channel(
    failed_error_type: str | None,
    order: Sequence[ChannelName],
    enabled: Enabled,
    priority: Priority,
    used: Iterable[ChannelName],
) -> ChannelName | None:
    """The next channel to try after one failed: push that reached nobody (not connected, no ack) goes to email first,
    anything else takes the first channel in `order` that is allowed and not yet used."""
    taken = set(used)
    candidates: list[ChannelName] = list(order)
    if failed_error_type in PUSH_UNREACHED:
        candidates.insert(0, ChannelName.email)
    for channel in candidates:
        if channel not in taken and channel_allowed(channel, priority, enabled):
            return channel
    return None


def joined_channel(
    failed_error_type: str | None,
    enabled: Enabled,
    priority: Priority,
    used: Iterable[ChannelName],
    tried: Iterable[ChannelName],
) -> ChannelName | None:
    """Push that reached nobody (not connected, no ack), when email is already on its way, rides on that email: the
    person is reached there, so push's part is fulfilled or lost with it rather than tried elsewhere.

    `tried` is what this fallback chain has tried itself: an email it already tried failed, so it is no
    email "on its way" and there is nothing to join.
    """
    if (
        failed_error_type in PUSH_UNREACHED
        and ChannelName.email in set(used)
        and ChannelName.email not in set(tried)
        and channel_allowed(ChannelName.email, priority, enabled)
    ):
        return ChannelName.email
    return None


def escalation_channels(
    order: Sequence[ChannelName], enabled: Enabled, priority: Priority, used: Iterable[ChannelName]
) -> list[ChannelName]:
    """Every allowed channel not used yet, fallback order first: where a critical alert goes next."""
    taken = set(used)
    ranked = list(dict.fromkeys([*order, *ChannelName]))
    return [c for c in ranked if c not in taken and channel_allowed(c, priority, enabled)]


def final_status(
    priority: Priority, planned_fulfilled: Sequence[bool], delivered_channels: int, confirmations: int
) -> NotificationStatus:
    """What a finished notification amounts to.

    A critical one counts distinct channels that confirmed delivery; any other counts the planned
    channels that reached the person, directly or through a fallback.
    """
    if priority is Priority.critical:
        return NotificationStatus.confirmed if delivered_channels >= confirmations else NotificationStatus.unconfirmed
    if planned_fulfilled and all(planned_fulfilled):
        return NotificationStatus.delivered
    if any(planned_fulfilled):
        return NotificationStatus.partially_delivered
    return NotificationStatus.failed


def route(notification: AgentNotification, preferences: Preferences, now: datetime) -> EnabledChannels:
    """The whole preference decision for one notification at `now` (UTC): which channels it may use (merged
    switches and minimum priorities), whether quiet hours hold it and until when, or whether it goes to the
    digest. Critical notifications are never held or digested.
    """
    return EnabledChannels(enabled=merge_preferences(preferences, notification.agent_id))
