"""herald.domain.oncall: who is on call at an instant, across DST changes (hypothesis), and escalation's pure parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from herald.domain.oncall import (
    child_notification_id,
    instant,
    on_call,
    parse_target,
    shift_at,
    shift_start,
    steps_of,
    taken_text,
    to_notify,
)
from herald.models.oncall import EscalationPolicy, EscalationPolicyInput, Override, Rotation, Schedule, ScheduleInput

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Australia/Sydney", "UTC", "America/Santiago"]
BERLIN = ZoneInfo("Europe/Berlin")


def schedule(zone: str, members: list[str], shift_hours: int, starts_at: datetime, overrides=()) -> Schedule:
    return Schedule(
        name="s",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        time_zone=zone,
        rotation=Rotation(members=members, shift_hours=shift_hours, starts_at=starts_at),
        overrides=list(overrides),
    )


members_st = st.lists(st.sampled_from(["ada", "bob", "cy", "dee", "eve"]), min_size=1, max_size=5)
start_st = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
offset_st = st.integers(min_value=0, max_value=400 * 24 * 3600)


def test_a_daily_shift_hands_over_at_nine_local_across_the_spring_change() -> None:
    s = schedule("Europe/Berlin", ["ada", "bob"], 24, datetime(2026, 3, 27, 9, 0))
    # Mar 29 2026: Berlin goes from +01:00 to +02:00 at 02:00 local.
    assert shift_start(s, 1) == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert shift_start(s, 2) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert shift_start(s, 2) - shift_start(s, 1) == timedelta(hours=23)
    assert on_call(s, datetime(2026, 3, 29, 6, 59, tzinfo=UTC)).user_id == "bob"
    assert on_call(s, datetime(2026, 3, 29, 7, 0, tzinfo=UTC)).user_id == "ada"


def test_the_autumn_shift_lasts_twenty_five_hours() -> None:
    s = schedule("Europe/Berlin", ["ada", "bob"], 24, datetime(2026, 10, 24, 9, 0))
    # Oct 25 2026: Berlin goes back from +02:00 to +01:00 at 03:00 local, inside shift 0.
    assert shift_start(s, 1) - shift_start(s, 0) == timedelta(hours=25)


def test_a_handover_in_the_spring_gap_happens_when_the_gap_ends() -> None:
    s = schedule("Europe/Berlin", ["ada", "bob"], 24, datetime(2026, 3, 28, 2, 30))
    # 02:30 on Mar 29 does not exist: the handover is at 03:00 CEST, 01:00 UTC.
    assert shift_start(s, 1) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert instant(datetime(2026, 3, 29, 2, 30), BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_nobody_is_on_call_before_the_first_shift_unless_overridden() -> None:
    s = schedule(
        "UTC",
        ["ada"],
        8,
        datetime(2026, 5, 1, 0, 0),
        [Override(user_id="zed", starts_at=datetime(2026, 4, 30, 20), ends_at=datetime(2026, 5, 1, 2))],
    )
    assert on_call(s, datetime(2026, 4, 30, 19, tzinfo=UTC)).user_id is None
    assert on_call(s, datetime(2026, 4, 30, 21, tzinfo=UTC)).user_id == "zed"
    assert on_call(s, datetime(2026, 5, 1, 1, tzinfo=UTC)).override
    assert on_call(s, datetime(2026, 5, 1, 2, tzinfo=UTC)).user_id == "ada"


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), members=members_st, hours=st.integers(1, 72), start=start_st, offset=offset_st)
def test_every_instant_from_the_first_shift_has_exactly_the_member_of_its_one_shift(
    zone: str, members: list[str], hours: int, start: datetime, offset: int
) -> None:
    s = schedule(zone, members, hours, start)
    at = shift_start(s, 0) + timedelta(seconds=offset)
    k = shift_at(s, at)
    assert k is not None
    assert shift_start(s, k) <= at < shift_start(s, k + 1)  # exactly one shift covers it
    assert on_call(s, at).user_id == members[k % len(members)]  # the members cycle
    assert not on_call(s, at).override


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), members=members_st, days=st.integers(1, 3), start=start_st, k=st.integers(1, 400))
def test_whole_day_shifts_hand_over_at_the_starts_at_wall_clock_time(
    zone: str, members: list[str], days: int, start: datetime, k: int
) -> None:
    s = schedule(zone, members, 24 * days, start)
    z = ZoneInfo(zone)
    handover = shift_start(s, k)
    local = handover.astimezone(z).replace(tzinfo=None)
    wanted = start + timedelta(days=days * k)
    if instant(wanted, z).astimezone(z).replace(tzinfo=None) == wanted:  # a wall-clock time that exists that day
        assert local == wanted
    else:  # in a gap: handed over when the gap ends, the first instant later than the wanted wall-clock time
        assert local > wanted and local - wanted <= timedelta(hours=2)
    # the handover hands over: the one before it ends as it starts
    assert shift_start(s, k - 1) <= handover
    if shift_start(s, k - 1) < handover:
        assert on_call(s, handover - timedelta(microseconds=1)).user_id == members[(k - 1) % len(members)]
    assert on_call(s, handover).user_id == members[k % len(members)]


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    members=members_st,
    hours=st.integers(1, 48),
    start=start_st,
    o_start=st.integers(0, 30 * 24 * 3600),
    o_len=st.integers(60, 7 * 24 * 3600),
    probe=st.integers(-2 * 24 * 3600, 40 * 24 * 3600),
)
def test_an_override_wins_over_the_rotation_exactly_while_it_lasts(
    zone: str, members: list[str], hours: int, start: datetime, o_start: int, o_len: int, probe: int
) -> None:
    base = schedule(zone, members, hours, start)
    first = shift_start(base, 0)
    o = Override(
        user_id="zed", starts_at=first + timedelta(seconds=o_start), ends_at=first + timedelta(seconds=o_start + o_len)
    )
    s = base.model_copy(update={"overrides": [o]})
    at = first + timedelta(seconds=probe)
    if o.starts_at <= at < o.ends_at:
        assert on_call(s, at).user_id == "zed" and on_call(s, at).override
    else:
        assert on_call(s, at) == on_call(base, at)


@given(local=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1)), more=st.integers(1, 10**6))
@settings(max_examples=300, deadline=None)
def test_reading_wall_clock_times_never_runs_backwards(local: datetime, more: int) -> None:
    for zone in map(ZoneInfo, ZONES):
        assert instant(local, zone) <= instant(local + timedelta(seconds=more), zone)


def test_targets_parse_and_bad_ones_are_refused_naming_the_field() -> None:
    assert parse_target("schedule:primary").kind == "schedule"
    assert parse_target("user:ada").name == "ada"
    with pytest.raises(ValidationError, match=r"steps\.0\.targets"):
        EscalationPolicyInput.model_validate({"steps": [{"targets": ["team:x"], "ack_within_seconds": 5}]})
    with pytest.raises(ValidationError, match="repeat"):
        EscalationPolicyInput.model_validate({"steps": [{"targets": ["user:a"], "ack_within_seconds": 5}], "repeat": 4})
    with pytest.raises(ValidationError, match="time_zone"):
        ScheduleInput.model_validate(
            {
                "time_zone": "Mars/Olympus",
                "rotation": {"members": ["a"], "shift_hours": 1, "starts_at": "2026-01-01T00:00"},
            }
        )


def test_a_policy_runs_its_steps_then_repeats_them() -> None:
    policy = EscalationPolicy(
        name="p",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        steps=[{"targets": ["user:a"], "ack_within_seconds": 5}, {"targets": ["user:b"], "ack_within_seconds": 7}],
        repeat=1,
    )
    assert [(s.round, s.step, s.ack_within_seconds) for s in steps_of(policy)] == [
        (0, 0, 5),
        (0, 1, 7),
        (1, 0, 5),
        (1, 1, 7),
    ]
    assert to_notify(["a", "b", "a", "c"], {"b"}) == ["a", "c"]
    assert taken_text("ada", "slack") == "Acknowledged by ada via slack"
    ids = {child_notification_id("n" * 128, r, s, u) for r in range(2) for s in range(3) for u in ("a", "b")}
    assert len(ids) == 12 and all(len(i) <= 128 for i in ids)


def test_a_step_offers_acknowledge_after_the_notifications_own_actions_unless_it_has_an_ack_or_no_room() -> None:
    from herald.domain.oncall import step_actions
    from herald.models import Action

    approve = Action(id="approve", label="Approve")
    assert [(a.id, a.label) for a in step_actions([])] == [("ack", "Acknowledge")]
    assert [a.id for a in step_actions([approve])] == ["approve", "ack"]
    full = [Action(id=f"a{i}", label=f"A{i}") for i in range(5)]
    assert step_actions(full) == full


def test_a_chat_message_of_a_step_someone_else_acked_says_who_took_it() -> None:
    from herald.domain.answers import conclusion_text
    from herald.models import Answer, ChatConclusion

    taken = Answer(action_id="ack", user_id="ada", channel="slack", answered_at=datetime(2026, 3, 29, 7, 2, tzinfo=UTC))
    text = conclusion_text(ChatConclusion(notification_id="n", status="delivered", taken=taken))
    assert text == "Acknowledged by ada via slack, 07:02 UTC"
