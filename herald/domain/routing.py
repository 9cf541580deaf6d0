"""Pure channel planning: which channels to use, in what order to fall back, and what the result means.

Deterministic and free of I/O, so the workflow can call it directly and tests need no Temporal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from herald.domain.errors import PUSH_UNREACHED
from herald.domain.resolve import DEFAULT_NOTIFY_RESOLVED, tells_resolved
from herald.domain.schedule import quiet_hours_end
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    DigestCadence,
    EnabledChannels,
    NotificationStatus,
    Preferences,
    Priority,
    QuietHoursAction,
)

SMS_MIN_PRIORITY = Priority.high
# A notification waits for quiet hours to end, but never longer than a day: a nearly day-long window on a
# fall-back night lasts up to 25 hours, and a wait must stay bounded whatever the window says.
MAX_HOLD = timedelta(hours=24)

Enabled = Mapping[ChannelName, bool]

# Channels that reach a person only at an address they saved (chat URLs, a Slack member id, a bound Telegram chat): the
# plan routes them only for a user whose contact has it (`reachable`), and a map that does not name them
# (every routing decision recorded before they existed) leaves them off, so recorded histories replay as they ran.
CONTACT_CHANNELS: dict[ChannelName, str] = {
    ChannelName.chat: "chat_urls",
    ChannelName.slack: "slack_user_id",
    ChannelName.telegram: "telegram_chat_id",
}


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


def merge_min_priorities(preferences: Preferences, agent_id: str) -> dict[ChannelName, Priority]:
    """Each channel's lowest priority, the agent's entry over the default; unset everywhere: low (everything)."""
    agent = preferences.agents.get(agent_id)
    merged: dict[ChannelName, Priority] = {}
    for channel in ChannelName:
        value = agent.setting(channel).min_priority if agent is not None else None
        if value is None:
            value = preferences.default.setting(channel).min_priority
        merged[channel] = value or Priority.low
    return merged


def merge_user_min_priority(preferences: Preferences, agent_id: str) -> Priority:
    """The lowest priority sent at all: the agent's entry over the user-wide default; unset: low."""
    agent = preferences.agents.get(agent_id)
    value = agent.min_priority if agent is not None else None
    return value or preferences.default.min_priority or Priority.low


def merge_notify_resolved(preferences: Preferences, agent_id: str) -> Priority | None:
    """The lowest priority whose resolve is told by email and SMS: the agent's entry over the default; unset
    everywhere: high (herald.domain.resolve.DEFAULT_NOTIFY_RESOLVED); None when set to false (never)."""
    agent = preferences.agents.get(agent_id)
    value = agent.notify_resolved if agent is not None else None
    if value is None:
        value = preferences.default.notify_resolved
    if value is None:
        return DEFAULT_NOTIFY_RESOLVED
    return value or None


def channel_allowed(channel: ChannelName, priority: Priority, enabled: Enabled) -> bool:
    """A channel may carry a notification if the user left it on and, for SMS, the priority is high enough."""
    if not enabled.get(channel, channel not in CONTACT_CHANNELS):
        return False
    return not (channel is ChannelName.sms and priority.rank < SMS_MIN_PRIORITY.rank)


def reachable(enabled: Enabled, contact: Contact | None) -> dict[ChannelName, bool]:
    """`enabled` with each contact channel off unless the contact holds its address."""
    return {
        channel: on
        and (channel not in CONTACT_CHANNELS or getattr(contact, CONTACT_CHANNELS[channel], None) is not None)
        for channel, on in enabled.items()
    }


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
    """Every allowed channel not used yet, fallback order first: where a critical alert goes next.

    A history recorded before a channel existed (chat, Slack, Telegram) has no entry for it, and channel_allowed
    leaves such a contact channel off: its replay escalates to the channels it escalated to then.
    """
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


def digest_collects(preferences: Preferences, priority: Priority) -> bool:
    """The user's digest is on and takes this priority instead of sending it now (critical: never)."""
    digest = preferences.digest
    if digest is None or digest.cadence is DigestCadence.off or priority is Priority.critical:
        return False
    return digest.collects.includes(priority)


def route(
    notification: AgentNotification, preferences: Preferences, now: datetime, contact: Contact | None = None
) -> EnabledChannels:
    """The whole preference decision for one notification at `now` (UTC): which channels it may use (merged
    switches and minimum priorities), whether quiet hours hold it and until when, or whether it goes to the
    digest. Critical notifications are never held or digested.
    """
    return route_for(notification.agent_id, notification.priority, notification.channels, preferences, now, contact)


def route_for(
    agent_id: str,
    priority: Priority,
    channels: Sequence[ChannelName],
    preferences: Preferences,
    now: datetime,
    contact: Contact | None = None,
) -> EnabledChannels:
    """`route` from the fields it needs, for callers that hold no whole notification (the preference activity).

    A channel is enabled when the merged switch is on, the priority reaches both the channel's and the
    user-wide minimum, the SMS gate lets it through, and, for a contact channel (Slack, Telegram), the user's
    `contact` holds its address. A notification none of whose requested channels is
    enabled is neither held nor digested (nothing would carry it; the workflow reports no_channel). Otherwise,
    in order: critical goes now; a priority the digest collects goes to the digest; inside quiet hours it goes
    to the digest (`during: digest`, with the hourly digest if the digest is off) or waits for the window's end.
    """
    switches = merge_preferences(preferences, agent_id)
    floors = merge_min_priorities(preferences, agent_id)
    user_floor = merge_user_min_priority(preferences, agent_id)
    enabled = reachable(
        {
            channel: channel_allowed(channel, priority, switches)
            and priority.rank >= floors[channel].rank
            and priority.rank >= user_floor.rank
            for channel in ChannelName
        },
        contact,
    )
    routed = EnabledChannels(
        enabled=enabled, notify_resolved=tells_resolved(merge_notify_resolved(preferences, agent_id), priority)
    )
    if priority is Priority.critical or not any(enabled[channel] for channel in channels):
        return routed
    if digest_collects(preferences, priority):
        return routed.model_copy(update={"digest": True})
    quiet_end = quiet_hours_end(preferences, now)
    if quiet_end is None:
        return routed
    assert preferences.quiet_hours is not None  # quiet_end comes from them
    if preferences.quiet_hours.action is QuietHoursAction.digest:
        return routed.model_copy(update={"digest": True})
    return routed.model_copy(update={"hold_until": min(quiet_end, now.astimezone(UTC) + MAX_HOLD)})
