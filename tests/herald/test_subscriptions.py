"""The subscriptions' decisions (herald/domain/subscriptions.py): the events an outcome makes and their order, what
they carry (ids, channel, status, times: no content), who receives them, and when failures disable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from herald.domain import subscriptions as rules
from herald.models import (
    SUBSCRIPTION_ERROR_MAX_CHARS,
    Answer,
    AnswerChannel,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    SubscriptionEventType,
    SubscriptionInput,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
E = SubscriptionEventType


def outcome(status: NotificationStatus, **fields: object) -> NotificationOutcome:
    values: dict[str, object] = {
        "notification_id": "n-1",
        "workflow_id": "notification/n-1",
        "agent_id": "deploy-bot",
        "user_id": "ada",
        "priority": Priority.high,
        "status": status,
    }
    values.update(fields)
    return NotificationOutcome.model_validate(values)


def delivered_on(*channels: ChannelName) -> dict[ChannelName, ChannelResult]:
    return {c: ChannelResult(channel=c, status=ChannelStatus.delivered) for c in channels}


def test_a_delivered_notification_makes_one_delivered_event_naming_its_channel() -> None:
    [event] = rules.outcome_events(outcome(NotificationStatus.delivered, channels=delivered_on(ChannelName.email)), NOW)
    assert event.type is E.delivered
    assert event.id == "n-1/notification.delivered"
    assert event.agent_id == "deploy-bot"
    assert event.data["channel"] == "email" and event.data["status"] == "delivered"
    assert event.data["notification_id"] == "n-1" and event.data["at"] == NOW.isoformat()


def test_an_answered_question_is_delivered_then_acknowledged_then_answered_without_the_text() -> None:
    ack = Answer(action_id="ack", user_id="ada", channel=AnswerChannel.push, answered_at=NOW - timedelta(minutes=2))
    answer = Answer(
        action_id="approve",
        user_id="ada",
        channel=AnswerChannel.sms,
        answered_at=NOW - timedelta(minutes=1),
        text="ok go",
    )
    events = rules.outcome_events(
        outcome(NotificationStatus.answered, channels=delivered_on(ChannelName.push), acknowledged=ack, answer=answer),
        NOW,
    )
    assert [e.type for e in events] == [E.delivered, E.acknowledged, E.answered]
    assert events[2].data["action_id"] == "approve" and events[2].data["channel"] == "sms"
    assert events[1].data["at"] == ack.answered_at.isoformat()
    assert all("ok go" not in str(e.model_dump()) for e in events)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (NotificationStatus.failed, E.failed),
        (NotificationStatus.silenced, E.silenced),
        (NotificationStatus.digested, E.digested),
        (NotificationStatus.grouped, E.grouped),
    ],
)
def test_each_outcome_status_makes_its_own_event(status: NotificationStatus, kind: SubscriptionEventType) -> None:
    [event] = rules.outcome_events(outcome(status), NOW)
    assert event.type is kind and event.data["status"] == status.value


def test_a_grouped_notification_names_its_group() -> None:
    [event] = rules.outcome_events(outcome(NotificationStatus.grouped, group_id="group/ada/deploy-bot/disk"), NOW)
    assert event.type is E.grouped and event.data["group_id"] == "group/ada/deploy-bot/disk"


def test_statuses_without_an_event_make_none() -> None:
    assert rules.outcome_events(outcome(NotificationStatus.suppressed_duplicate), NOW) == []
    assert rules.outcome_events(outcome(NotificationStatus.no_channel), NOW) == []


def test_a_heartbeat_miss_names_its_agent_and_heartbeat() -> None:
    event = rules.heartbeat_missed_event("heartbeat/deploy-bot/nightly", "run.1", NOW)
    assert event is not None and event.type is E.heartbeat_missed
    assert event.agent_id == "deploy-bot" and event.data["heartbeat"] == "nightly"
    assert event.id == "heartbeat/deploy-bot/nightly/missed/run.1"
    assert rules.heartbeat_missed_event("notification/x", "run.1", NOW) is None


def test_receivers_are_the_enabled_subscriptions_of_the_type_and_agent() -> None:
    event = rules.outcome_events(outcome(NotificationStatus.failed), NOW)[0]
    mine = rules.saved(
        "mine",
        SubscriptionInput(url="https://a.example/h", events=[E.failed], agent_id="deploy-bot"),
        "admin",
        NOW,
        None,
    )
    anyone = rules.saved("all", SubscriptionInput(url="https://a.example/h", events=[E.failed]), "admin", NOW, None)
    other = rules.saved(
        "other", SubscriptionInput(url="https://a.example/h", events=[E.failed], agent_id="x"), "admin", NOW, None
    )
    wrong_type = rules.saved(
        "dlv", SubscriptionInput(url="https://a.example/h", events=[E.delivered]), "admin", NOW, None
    )
    off = mine.model_copy(update={"name": "off", "enabled": False})
    assert rules.receivers([mine, anyone, other, wrong_type, off], event) == ["mine", "all"]


def test_failures_in_a_row_disable_at_the_limit() -> None:
    assert rules.after_failure(0, 3) == (1, False)
    assert rules.after_failure(2, 3) == (3, True)


def test_errors_are_kept_on_one_line_and_bounded() -> None:
    kept = rules.bounded_error("boom\n" + "x" * 1000)
    assert "\n" not in kept and len(kept) <= SUBSCRIPTION_ERROR_MAX_CHARS


def test_a_put_enables_again_and_keeps_the_creation_time() -> None:
    body = SubscriptionInput(url="https://a.example/h", events=[E.failed, E.failed])
    first = rules.saved("s", body, "admin", NOW, None)
    disabled = first.model_copy(update={"enabled": False, "failures": 5, "last_error": "x", "disabled_at": NOW})
    again = rules.saved("s", body, "admin", NOW + timedelta(hours=1), disabled)
    assert again.enabled and again.failures == 0 and again.disabled_at is None and again.last_error is None
    assert again.created_at == NOW and again.events == [E.failed]


@pytest.mark.parametrize("url", ["ftp://a.example/h", "not a url", "http:///nohost", "https://a b.example/"])
def test_the_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        SubscriptionInput(url=url, events=[E.failed])


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="events"):
        SubscriptionInput.model_validate({"url": "https://a.example/h", "events": ["notification.created"]})
