"""The pure side of what ops see in the Temporal UI: attributes, summaries and current details."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from herald.domain import search
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    NotificationOutcome,
    NotificationStatus,
    Priority,
)

EMAIL, PUSH, SMS, WEBHOOK = ChannelName.email, ChannelName.push, ChannelName.sms, ChannelName.webhook


def note(**fields: object) -> AgentNotification:
    values: dict[str, object] = {"agent_id": "support-agent", "user_id": "admin-1", "title": "error rate 7%"}
    values.update(fields)
    return AgentNotification.model_validate(values)


def outcome(**fields: object) -> NotificationOutcome:
    values: dict[str, object] = {
        "notification_id": "n1",
        "workflow_id": "notification/n1",
        "agent_id": "support-agent",
        "user_id": "admin-1",
        "priority": "high",
    }
    values.update(fields)
    return NotificationOutcome.model_validate(values)


def test_the_dev_server_registers_the_six_attributes_with_their_types() -> None:
    assert search.SERVER_REGISTRATIONS == {
        "HeraldAgentId": "Keyword",
        "HeraldUserId": "Keyword",
        "HeraldPriority": "Keyword",
        "HeraldStatus": "Keyword",
        "HeraldChannels": "KeywordList",
        "HeraldResolveKey": "Keyword",
    }
    assert [k.name for k in search.SEARCH_ATTRIBUTE_KEYS] == list(search.SERVER_REGISTRATIONS)


def test_a_notification_starts_with_ids_priority_and_pending_and_nothing_personal() -> None:
    n = note(priority="high", body="the body", metadata={"email": "ada@example.com"})
    attributes = search.notification_attributes(n)
    assert {pair.key.name: pair.value for pair in attributes} == {
        "HeraldAgentId": "support-agent",
        "HeraldUserId": "admin-1",
        "HeraldPriority": "high",
        "HeraldStatus": "pending",
    }


def test_missing_updates_only_add_what_the_start_left_out() -> None:
    wanted = search.notification_attributes(note())
    assert search.missing_updates(wanted, wanted) == []
    started = TypedSearchAttributes([SearchAttributePair(search.AGENT_ID, "support-agent")])
    updates = search.missing_updates(started, wanted)
    assert {u.key.name: u.value for u in updates} == {
        "HeraldUserId": "admin-1",
        "HeraldPriority": "medium",
        "HeraldStatus": "pending",
    }
    assert [u.key.name for u in search.missing_updates(TypedSearchAttributes.empty, search.digest_attributes("u"))] == [
        "HeraldUserId"
    ]


def test_channels_are_listed_once_in_a_fixed_order() -> None:
    [update] = search.channels_update({WEBHOOK, EMAIL, PUSH, EMAIL})
    assert update.key is search.CHANNELS
    assert update.value == ["push", "email", "webhook"]
    [status] = search.status_update(NotificationStatus.unconfirmed)
    assert (status.key.name, status.value) == ("HeraldStatus", "unconfirmed")


def test_summary_is_one_line_within_the_uis_200_bytes() -> None:
    assert search.notification_summary(note(priority="high")) == "high: error rate 7% on support-agent -> admin-1"
    assert search.notification_summary(note(title="two\nlines  here")) == (
        "medium: two lines here on support-agent -> admin-1"
    )
    long = search.notification_summary(note(title="é" * 150))
    assert len(long.encode()) <= search.SUMMARY_MAX_BYTES
    assert long.startswith("medium: éé") and long.endswith("…")


def test_delivery_summaries_say_why_a_channel_was_tried() -> None:
    assert search.delivery_summary(EMAIL, None, False) == "deliver via email"
    assert search.delivery_summary(EMAIL, PUSH, False) == "deliver via email, fallback for push"
    assert search.delivery_summary(PUSH, None, True) == "deliver via push, escalation"


def test_channel_lines_name_error_types_not_messages() -> None:
    delivered = ChannelResult(channel=EMAIL, status=ChannelStatus.delivered, attempt_count=2)
    assert search.channel_line(delivered) == "email: delivered (2 attempts)"
    failed = ChannelResult(
        channel=PUSH,
        status=ChannelStatus.failed,
        attempt_count=1,
        error_type="RecipientNotConnected",
        error="ada@example.com is not connected",
    )
    assert search.channel_line(failed, EMAIL) == "push: failed RecipientNotConnected (1 attempt) -> email"
    assert search.channel_line(ChannelResult(channel=SMS, escalation=True)) == "sms: sending, escalation"
    assert search.channel_line(ChannelResult(channel=SMS, status=ChannelStatus.failed)) == "sms: failed error"


def test_current_details_list_each_channel_and_where_it_fell_back_to() -> None:
    o = outcome(
        status="delivered",
        channels={
            "push": {"channel": "push", "status": "failed", "error_type": "RecipientNotConnected", "attempt_count": 1},
            "email": {"channel": "email", "status": "delivered", "attempt_count": 2, "fallback_for": "push"},
        },
    )
    assert search.current_details(o) == (
        "**delivered**\n- push: failed RecipientNotConnected (1 attempt) -> email\n- email: delivered (2 attempts)"
    )


def test_current_details_of_a_duplicate_and_of_a_held_notification() -> None:
    assert search.current_details(outcome(status="suppressed_duplicate", duplicate_of="n0")) == (
        "**suppressed_duplicate**\nduplicate of n0"
    )
    assert search.current_details(outcome(status="silenced", silence_id="s0")) == "**silenced**\nsilenced by s0"
    throttled = outcome(status="throttled", digest_id="digest-1")
    assert (
        search.current_details(throttled)
        == f"**throttled**\nover max_per_hour from {throttled.agent_id}: carried by digest-1"
    )
    left_out = outcome(status="delivered", throttled_channels=["sms"])
    assert search.current_details(left_out) == "**delivered**\nleft out, over their max_per_hour: sms"
    held = outcome(priority=Priority.medium, held_until=datetime(2026, 1, 2, 7, 0, tzinfo=UTC))
    assert search.current_details(held) == "**pending**\nheld for quiet hours until 2026-01-02T07:00+00:00"
