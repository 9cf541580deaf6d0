"""A heartbeat's pure decisions (herald/domain/heartbeats.py) and its models' validation, without Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from herald.domain import heartbeats
from herald.domain.validation import describe
from herald.models import (
    HEARTBEAT_SECONDS_MAX,
    ChannelName,
    HeartbeatConfig,
    HeartbeatEvent,
    HeartbeatInput,
    HeartbeatRun,
    HeartbeatSpec,
    HeartbeatState,
    Priority,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def spec(**fields: Any) -> HeartbeatSpec:
    values: dict[str, Any] = {
        "name": "nightly-backup",
        "agent_id": "backup-agent",
        "every_seconds": 60,
        "grace_seconds": 30,
        "notify": {"user_id": "ada"},
    }
    return HeartbeatSpec.model_validate(values | fields)


def run(**fields: Any) -> HeartbeatRun:
    return heartbeats.started(HeartbeatRun(config=HeartbeatConfig(spec=spec(**fields))), T0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def events(notices: list[heartbeats.Notice]) -> list[HeartbeatEvent]:
    return [n.event for n in notices]


def test_the_start_counts_as_the_first_check_in_and_the_deadline_is_every_plus_grace() -> None:
    r = run()
    assert r.last_ping_at == T0
    assert heartbeats.deadline(r) == at(90)
    assert heartbeats.check_deadline(r, at(89.9)) == []
    assert r.state is HeartbeatState.up


def test_a_missed_deadline_is_said_once_and_the_next_ping_resumes_it() -> None:
    r = run()
    [missed] = heartbeats.check_deadline(r, at(90))
    assert (missed.event, missed.last_ping_at, missed.due) == (HeartbeatEvent.missed, T0, at(90))
    assert r.state is HeartbeatState.missed and r.missed_at == at(90)
    assert heartbeats.check_deadline(r, at(500)) == [], "a missed heartbeat stays quiet until a ping"
    [resumed] = heartbeats.ping(r, at(600), at(600))
    assert (resumed.event, resumed.last_ping_at, resumed.due) == (HeartbeatEvent.resumed, at(600), at(90))
    assert r.state is HeartbeatState.up and r.missed_at is None
    assert heartbeats.deadline(r) == at(690)


def test_a_ping_in_time_moves_the_deadline_and_says_nothing() -> None:
    r = run()
    assert heartbeats.ping(r, at(50), at(50)) == []
    assert heartbeats.deadline(r) == at(140)
    assert heartbeats.ping(r, at(100), at(100)) == []
    assert r.state is HeartbeatState.up


def test_a_ping_sent_in_time_but_handled_late_invents_no_miss() -> None:
    """No worker ran between the ping (at 80 s) and the deadline (90 s): it is handled at 95 s, still in time."""
    r = run()
    assert heartbeats.ping(r, at(80), at(95)) == []
    assert r.state is HeartbeatState.up
    assert heartbeats.check_deadline(r, at(95)) == [], "the deadline moved to 170 s"


def test_a_ping_sent_after_a_deadline_nobody_saw_reports_the_miss_then_its_end() -> None:
    r = run()
    assert events(heartbeats.ping(r, at(120), at(125))) == [HeartbeatEvent.missed, HeartbeatEvent.resumed]
    assert r.state is HeartbeatState.up and r.last_ping_at == at(120)


def test_a_pings_time_is_clamped_between_the_last_ping_and_now() -> None:
    r = run()
    heartbeats.ping(r, at(50), at(50))
    heartbeats.ping(r, at(10), at(60))  # a clock behind: counts as the last ping, never earlier
    assert r.last_ping_at == at(50)
    heartbeats.ping(r, at(10_000), at(70))  # a clock ahead: counts as now
    assert r.last_ping_at == at(70)


def test_a_shorter_period_applies_from_the_last_ping_and_may_miss_at_once() -> None:
    r = run()
    assert heartbeats.configure(r, spec(every_seconds=120), at(100)) == []
    assert heartbeats.deadline(r) == at(150)
    assert events(heartbeats.configure(r, spec(every_seconds=10, grace_seconds=0), at(100))) == [HeartbeatEvent.missed]
    with pytest.raises(ValueError, match="sent to"):
        heartbeats.configure(r, spec(name="other"), at(100))


def test_the_notifications_name_the_heartbeat_and_dedup_only_against_themselves() -> None:
    r = run(notify={"user_id": "ada", "channels": ["webhook"]})
    [missed] = heartbeats.check_deadline(r, at(90))
    note = heartbeats.notification(r.config.spec, missed, "n1", at(90))
    assert note.title == "nightly-backup missed its check-in"
    assert (note.agent_id, note.user_id, note.priority) == ("backup-agent", "ada", Priority.high)
    assert note.channels == [ChannelName.webhook]
    assert note.dedup_key == "heartbeat/nightly-backup/n1"
    assert note.created_at == at(90)
    [resumed] = heartbeats.ping(r, at(200), at(200))
    again = heartbeats.notification(r.config.spec, resumed, "n2", at(200))
    assert again.title == "nightly-backup checked in again"
    assert again.channels == [ChannelName.webhook]
    assert heartbeats.notification(spec(), resumed, "n3", at(200)).channels == [ChannelName.push, ChannelName.email]
    assert again.dedup_key != note.dedup_key


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"every_seconds": 0}, "every_seconds", "greater than or equal to 1"),
        ({"every_seconds": HEARTBEAT_SECONDS_MAX + 1}, "every_seconds", "less than or equal to"),
        ({"every_seconds": "60"}, "every_seconds", "must be an integer"),
        ({"grace_seconds": -1}, "grace_seconds", "greater than or equal to 0"),
        ({"notify": {}}, "notify.user_id", "is required"),
        ({"notify": {"user_id": "ada", "channels": []}}, "notify.channels", "at least one channel"),
        ({"notify": {"user_id": "ada", "priority": "urgent"}}, "notify.priority", "low"),
        ({"agent_id": "no spaces"}, "agent_id", "1-128 characters"),
        ({"name": "Nightly Backup"}, "name", "lowercase letters"),
        ({"name": "a/b"}, "name", "lowercase letters"),
        ({"name": "x" * 65}, "name", "1-64 characters"),
    ],
)
def test_a_bad_spec_names_the_field(fields: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**fields)
    [problem] = describe(caught.value.errors())
    assert problem.field == field and says in problem.message, problem


def test_the_input_defaults_grace_to_zero_and_priority_to_high() -> None:
    body = HeartbeatInput.model_validate({"agent_id": "a", "every_seconds": 5, "notify": {"user_id": "ada"}})
    assert body.grace_seconds == 0 and body.notify.priority is Priority.high and body.notify.channels is None
