"""Grouping: notifications of one agent for one user with one `group_key` are delivered together, in one message.

Pure, so the group workflow's decisions (workflows/group.py) are tested without Temporal:

- Which notifications are grouped (`groups`): one with a group_key, unless it is critical (never waits), a
  question (its answer is wanted now, and one message cannot carry several questions' buttons), snoozed by its
  person (sent nowhere: its rule's snooze would not hold the group's message), or itself a digest's or a group's
  message.
- When a batch goes (`send_at`): the first member of a group waits its `group_wait_seconds` for the others, then one
  message lists them all. A member arriving within `group_interval_seconds` of the group's last message waits for the
  next interval (last message + interval); one arriving later opens a new batch and waits `group_wait_seconds` again.
- When the group's workflow may end (`idle_until`): once no member waits and an interval has passed since its
  last message, so a late member still goes at the interval, not after a fresh wait.
- What the message says (`group_notification`): "<n> notifications: <first title>", its body one line per member's
  title (the digest's rendering, herald.domain.digest.digest_body), on the first member's channels, at the highest
  member priority, from the agent itself, so the user's preferences for that agent route it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from herald.domain.dedup import own_key
from herald.domain.digest import digest_body, digest_item
from herald.models import (
    TITLE_MAX_CHARS,
    AgentNotification,
    GroupMember,
    Priority,
)


def group_workflow_id(user_id: str, agent_id: str, group_key: str) -> str:
    """`group/<user_id>/<agent_id>/<group_key>`: ids hold no `/`, so the key (which may) comes last and the parts stay
    apart."""
    return f"group/{user_id}/{agent_id}/{group_key}"


def groups(
    notification: AgentNotification, *, is_digest: bool = False, is_group: bool = False, snoozed: bool = False
) -> bool:
    """Whether this notification waits for its group: it has a group_key, is not critical, asks nothing, is not a
    digest's or a group's message, and is not snoozed (a snoozed one is sent nowhere, grouped or not)."""
    if notification.group_key is None or is_digest or is_group or snoozed:
        return False
    return notification.priority is not Priority.critical and not notification.actions


def member_of(notification: AgentNotification) -> GroupMember:
    """What the group holds of a notification: what its message lists, and the member's own wait and interval."""
    return GroupMember(
        item=digest_item(notification),
        channels=list(notification.channels),
        group_wait_seconds=notification.group_wait_seconds,
        group_interval_seconds=notification.group_interval_seconds,
    )


def send_at(
    first_arrived: datetime,
    wait_seconds: float,
    last_sent_at: datetime | None,
    interval_seconds: float | None,
) -> datetime:
    """When the batch whose first member arrived at `first_arrived` goes: within an interval of the group's last
    message, at that interval's end; otherwise after the first member's wait."""
    if last_sent_at is not None and interval_seconds is not None:
        next_interval = last_sent_at + timedelta(seconds=interval_seconds)
        if first_arrived < next_interval:
            return next_interval
    return first_arrived + timedelta(seconds=wait_seconds)


def idle_until(last_sent_at: datetime, interval_seconds: float) -> datetime:
    """Until when an emptied group waits for late members before its workflow ends."""
    return last_sent_at + timedelta(seconds=interval_seconds)


def group_title(members: Sequence[GroupMember]) -> str:
    """`12 notifications: <first title>` (one: the title alone), cut to the title limit."""
    first = members[0].item.title
    if len(members) == 1:
        return first
    title = f"{len(members)} notifications: {first}"
    return title if len(title) <= TITLE_MAX_CHARS else title[: TITLE_MAX_CHARS - 1].rstrip() + "…"


def group_priority(members: Sequence[GroupMember]) -> Priority:
    """The highest priority among the members (none is critical: critical never waits)."""
    return max((m.item.priority for m in members), key=lambda p: p.rank)


def group_notification(
    user_id: str, agent_id: str, group_key: str, message_id: str, members: Sequence[GroupMember], now: datetime
) -> AgentNotification:
    """The one message of a batch: from the agent, to the user, on the first member's channels, listing every
    member. `members` come in the order the group took them: the first is the batch's first. It has no group_key
    (it is never grouped again) and dedups only against itself."""
    if not members:
        raise ValueError("a group's message needs at least one member")
    ordered = list(members)
    return AgentNotification(
        notification_id=message_id,
        agent_id=agent_id,
        user_id=user_id,
        title=group_title(ordered),
        body=digest_body([m.item for m in ordered]),
        priority=group_priority(ordered),
        channels=list(ordered[0].channels),
        metadata={"group_key": group_key, "grouped": len(ordered)},
        created_at=now,
        dedup_key=own_key("group", message_id),
    )
