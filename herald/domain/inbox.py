"""The inbox's decisions, without I/O: read marks, and the test notification the preference center sends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from herald.domain.dedup import own_key
from herald.models import AgentNotification, ChannelName, Priority
from herald.models.inbox import READ_IDS_MAX, InboxReadState

# The sender of "send me a test notification": an agent id like any other, so preferences may name it.
TEST_AGENT_ID = "herald"


def mark_read(
    state: InboxReadState,
    *,
    notification_ids: Sequence[str] = (),
    up_to: datetime | None = None,
    now: datetime,
) -> InboxReadState:
    """The state after marking `notification_ids` read and, with `up_to`, everything created by then.

    The read-up-to mark only moves forward. An id marked one by one before `up_to` is covered by the mark (it
    existed when it was marked), so "mark all read" folds those away and the list stays short; past
    READ_IDS_MAX the oldest single marks are dropped.
    """
    read_up_to = state.read_up_to
    if up_to is not None and (read_up_to is None or up_to > read_up_to):
        read_up_to = up_to
    read_ids = {
        notification_id: marked_at
        for notification_id, marked_at in state.read_ids.items()
        if read_up_to is None or marked_at > read_up_to
    }
    for notification_id in notification_ids:
        read_ids.setdefault(notification_id, now)
    if len(read_ids) > READ_IDS_MAX:
        newest = sorted(read_ids.items(), key=lambda item: item[1])[-READ_IDS_MAX:]
        read_ids = dict(newest)
    return InboxReadState(read_up_to=read_up_to, read_ids=read_ids)


def login_link(api_url: str, token: str) -> str:
    """The page's address with the token in the fragment: browsers never send a fragment, so no log sees it."""
    return f"{api_url.rstrip('/')}/#token={token}"


def is_read(state: InboxReadState, notification_id: str, created_at: datetime | None) -> bool:
    """Read if marked by id, or created at or before the read-up-to mark (the page applies the same rule)."""
    if notification_id in state.read_ids:
        return True
    return state.read_up_to is not None and created_at is not None and created_at <= state.read_up_to


def build_test_notification(
    user_id: str, channel: ChannelName, notification_id: str, now: datetime
) -> AgentNotification:
    """What "send me a test notification" sends: high priority, so SMS (high and critical only) carries it too.

    Its own dedup key, so a second test a minute later is sent rather than suppressed as a duplicate.
    """
    return AgentNotification(
        notification_id=notification_id,
        agent_id=TEST_AGENT_ID,
        user_id=user_id,
        title=f"Test notification ({channel.value})",
        body=f"Sent from the preference center at {now:%H:%M:%S} UTC to check that {channel.value} reaches you.",
        priority=Priority.high,
        channels=[channel],
        created_at=now,
        dedup_key=own_key("test-notification", notification_id),
        metadata={"test": True},
    )
