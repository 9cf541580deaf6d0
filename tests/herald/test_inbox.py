"""The inbox's pure decisions: read marks, the test notification, the login link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from herald.domain.inbox import TEST_AGENT_ID, build_test_notification, is_read, login_link, mark_read
from herald.models import ChannelName, Priority
from herald.models.inbox import READ_IDS_MAX, InboxReadState, MarkRead

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_nothing_is_read_at_first() -> None:
    assert not is_read(InboxReadState(), "n1", T0)


def test_marking_by_id_reads_that_one_only() -> None:
    state = mark_read(InboxReadState(), notification_ids=["n1"], now=T0)
    assert is_read(state, "n1", T0 - timedelta(days=1))
    assert not is_read(state, "n2", T0 - timedelta(days=1))
    again = mark_read(state, notification_ids=["n1"], now=T0 + timedelta(hours=1))
    assert again.read_ids == {"n1": T0}, "marking again keeps the first mark"


def test_mark_all_reads_what_was_created_by_then_and_nothing_newer() -> None:
    state = mark_read(InboxReadState(), up_to=T0, now=T0)
    assert is_read(state, "old", T0 - timedelta(seconds=1))
    assert is_read(state, "same-instant", T0)
    assert not is_read(state, "newer", T0 + timedelta(seconds=1))
    assert not is_read(state, "unknown-time", None), "without a creation time only an id mark counts"


def test_the_mark_only_moves_forward() -> None:
    state = mark_read(InboxReadState(), up_to=T0, now=T0)
    assert mark_read(state, up_to=T0 - timedelta(hours=1), now=T0).read_up_to == T0


def test_mark_all_folds_single_marks_it_covers_and_keeps_later_ones() -> None:
    state = mark_read(InboxReadState(), notification_ids=["early"], now=T0)
    state = mark_read(state, notification_ids=["late"], now=T0 + timedelta(hours=2))
    state = mark_read(state, up_to=T0 + timedelta(hours=1), now=T0 + timedelta(hours=3))
    assert state.read_ids == {"late": T0 + timedelta(hours=2)}
    assert is_read(state, "late", T0 + timedelta(hours=2))


def test_single_marks_are_capped_oldest_first() -> None:
    state = InboxReadState()
    for i in range(READ_IDS_MAX + 3):
        state = mark_read(state, notification_ids=[f"n{i}"], now=T0 + timedelta(seconds=i))
    assert len(state.read_ids) == READ_IDS_MAX
    assert "n0" not in state.read_ids and f"n{READ_IDS_MAX + 2}" in state.read_ids


def test_mark_read_needs_something_to_mark() -> None:
    with pytest.raises(ValidationError, match="notification_ids, up_to"):
        MarkRead()
    with pytest.raises(ValidationError):
        MarkRead(notification_ids=["bad id"])


def test_the_test_notification_is_high_priority_on_its_one_channel_and_never_a_duplicate() -> None:
    first = build_test_notification("ada", ChannelName.sms, "t1", T0)
    second = build_test_notification("ada", ChannelName.sms, "t2", T0)
    assert (first.agent_id, first.user_id, first.channels) == (TEST_AGENT_ID, "ada", [ChannelName.sms])
    assert first.priority is Priority.high, "SMS carries high and critical only"
    assert first.dedup_key != second.dedup_key
    assert "sms" in first.title


def test_login_link_carries_the_token_in_the_fragment() -> None:
    assert login_link("http://127.0.0.1:8000/", "hrt_x") == "http://127.0.0.1:8000/#token=hrt_x"
    assert login_link("https://herald.example.com", "hrt_x") == "https://herald.example.com/#token=hrt_x"
