"""Grouping's pure decisions (herald/domain/grouping.py), the group_key's validation, and the store's recording of a
group's message on its members' outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from herald.adapters.store import Store
from herald.domain import grouping
from herald.models import (
    Action,
    AgentNotification,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    GroupDelivery,
    GroupRecord,
    NotificationOutcome,
    NotificationStatus,
    Priority,
)
from tests.herald import test_store

store = test_store.store

NOW = datetime(2026, 11, 20, 14, 37, 12, tzinfo=UTC)


def note(**fields: Any) -> AgentNotification:
    values: dict[str, Any] = {"agent_id": "shop-bot", "user_id": "ada", "title": "checkout error", "group_key": "eu"}
    values.update(fields)
    return AgentNotification(**values)


# --- which notifications are grouped ---------------------------------------------------------------------------


def test_a_notification_with_a_group_key_is_grouped_with_the_defaults() -> None:
    n = note()
    assert grouping.groups(n)
    assert (n.group_wait_seconds, n.group_interval_seconds) == (30, 300)


@pytest.mark.parametrize(
    "fields",
    [
        {"group_key": None},
        {"priority": Priority.critical},
        {"actions": [Action(id="approve", label="Approve")]},
    ],
    ids=["no key", "critical", "question"],
)
def test_without_a_key_critical_and_questions_are_never_grouped(fields: dict[str, Any]) -> None:
    assert not grouping.groups(note(**fields))


def test_a_digest_or_a_groups_own_message_is_never_grouped_again() -> None:
    assert not grouping.groups(note(), is_digest=True)
    assert not grouping.groups(note(), is_group=True)


def test_a_snoozed_one_is_not_grouped_it_is_sent_nowhere() -> None:
    assert not grouping.groups(note(), snoozed=True)


def test_the_group_workflow_id_names_user_agent_and_key_the_key_last() -> None:
    assert grouping.group_workflow_id("ada", "shop-bot", "checkout/eu") == "group/ada/shop-bot/checkout/eu"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"group_key": ""}, "group_key"),
        ({"group_key": " eu"}, "group_key"),
        ({"group_key": "eu\n"}, "group_key"),
        ({"group_key": "e\x00u"}, "group_key"),
        ({"group_key": "k" * 201}, "group_key"),
        ({"group_wait_seconds": -1}, "group_wait_seconds"),
        ({"group_wait_seconds": 3601}, "group_wait_seconds"),
        ({"group_wait_seconds": True}, "group_wait_seconds"),
        ({"group_interval_seconds": 0}, "group_interval_seconds"),
        ({"group_interval_seconds": 86401}, "group_interval_seconds"),
    ],
)
def test_bad_group_fields_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        note(**fields)
    assert [e["loc"][0] for e in raised.value.errors()] == [field]


def test_a_key_may_hold_slashes_spaces_inside_and_any_script() -> None:
    assert note(group_key="checkout/eu west/Zürich").group_key == "checkout/eu west/Zürich"


# --- when a batch goes -----------------------------------------------------------------------------------------


def test_a_first_member_waits_its_group_wait() -> None:
    assert grouping.send_at(NOW, 30, None, None) == NOW + timedelta(seconds=30)


def test_a_member_within_the_interval_of_the_last_message_goes_at_the_interval() -> None:
    last = NOW - timedelta(seconds=100)
    assert grouping.send_at(NOW, 30, last, 300) == last + timedelta(seconds=300)


def test_a_member_after_the_interval_opens_a_new_batch_and_waits_again() -> None:
    last = NOW - timedelta(seconds=301)
    assert grouping.send_at(NOW, 30, last, 300) == NOW + timedelta(seconds=30)


def test_an_emptied_group_stays_open_for_one_interval() -> None:
    assert grouping.idle_until(NOW, 300) == NOW + timedelta(seconds=300)


# --- what the message says -------------------------------------------------------------------------------------


def members(count: int, **fields: Any) -> list[Any]:
    return [
        grouping.member_of(note(title=f"checkout error {i}", created_at=NOW + timedelta(seconds=i), **fields))
        for i in range(count)
    ]


def test_the_message_names_the_count_and_the_first_title_and_lists_every_member() -> None:
    batch = members(12)
    message = grouping.group_notification("ada", "shop-bot", "eu", "group-1", batch, NOW)
    assert message.title == "12 notifications: checkout error 0"
    assert all(f"checkout error {i}" in message.body for i in range(12))
    assert message.group_key is None and not grouping.groups(message)
    assert (message.agent_id, message.user_id, message.notification_id) == ("shop-bot", "ada", "group-1")
    assert message.dedup_key == "group/group-1"
    assert message.metadata == {"group_key": "eu", "grouped": 12}


def test_one_member_keeps_its_title() -> None:
    assert grouping.group_notification("ada", "shop-bot", "eu", "g", members(1), NOW).title == "checkout error 0"


def test_the_message_goes_on_the_channels_of_the_first_member_taken_at_the_highest_priority() -> None:
    first = grouping.member_of(note(channels=[ChannelName.sms, ChannelName.email], priority=Priority.low))
    later = grouping.member_of(note(created_at=NOW + timedelta(seconds=5), priority=Priority.high))
    message = grouping.group_notification("ada", "shop-bot", "eu", "g", [first, later], NOW)
    assert message.channels == [ChannelName.sms, ChannelName.email]
    assert message.priority is Priority.high


def test_a_long_first_title_is_cut_to_the_title_limit() -> None:
    batch = members(2)
    batch[0] = batch[0].model_copy(update={"item": batch[0].item.model_copy(update={"title": "x" * 200})})
    title = grouping.group_title(batch)
    assert len(title) == 200 and title.startswith("2 notifications: x") and title.endswith("…")


def test_a_message_needs_a_member() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        grouping.group_notification("ada", "shop-bot", "eu", "g", [], NOW)


# --- the store: the message on each member's outcome -----------------------------------------------------------


async def test_the_groups_message_is_recorded_on_its_members_and_a_missing_one_is_named(store: Store) -> None:
    group_id = grouping.group_workflow_id("ada", "shop-bot", "eu")
    for notification_id, group in (("m1", group_id), ("m2", group_id), ("other", "group/ada/shop-bot/us")):
        await store.notifications.record_outcome(
            NotificationOutcome(
                notification_id=notification_id,
                workflow_id=f"notification/{notification_id}",
                agent_id="shop-bot",
                user_id="ada",
                priority=Priority.medium,
                status=NotificationStatus.grouped,
                group_id=group,
            )
        )
    record = GroupRecord(
        group_id=group_id,
        notification_ids=["m1", "m2", "other", "m3"],
        delivery=GroupDelivery(notification_id="group-1", status=NotificationStatus.delivered, size=4),
        channels={
            ChannelName.email: ChannelResult(channel=ChannelName.email, status=ChannelStatus.delivered, attempt_count=1)
        },
    )
    assert await store.notifications.record_grouped(record) == ["m3"]
    assert await store.notifications.record_grouped(record) == ["m3"]  # a retry writes the same again
    for notification_id in ("m1", "m2"):
        outcome = await store.notifications.get_outcome(notification_id)
        assert outcome is not None and outcome.status is NotificationStatus.grouped
        assert outcome.group_delivery == record.delivery and outcome.delivered_channels == [ChannelName.email]
    other = await store.notifications.get_outcome("other")
    assert other is not None and other.group_delivery is None and other.channels == {}
