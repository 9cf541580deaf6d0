"""Wall-clock schedules: quiet-window ends and digest boundaries in the user's zone, across midnight and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from herald.domain.schedule import digest_cadence, next_digest_at, quiet_window_end, resolve_local
from herald.models import DigestCadence, Preferences

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


def prefs(tz: str = "UTC", **fields: Any) -> Preferences:
    return Preferences.model_validate({"time_zone": tz, **fields})


def hourly(tz: str, **fields: Any) -> Preferences:
    return prefs(tz, digest={"cadence": "hourly"}, **fields)


def daily(tz: str, hour: int | None) -> Preferences:
    return prefs(tz, digest={"cadence": "daily", "hour": hour})


# --- resolving local times -------------------------------------------------------------------------


def test_an_ordinary_local_time_is_that_instant() -> None:
    assert resolve_local(date(2026, 6, 1), time(8), BERLIN) == utc(2026, 6, 1, 6)
    assert resolve_local(date(2026, 1, 15), time(8), NEW_YORK) == utc(2026, 1, 15, 13)


@pytest.mark.parametrize(
    ("tz", "day", "at", "expected"),
    [
        (BERLIN, date(2026, 3, 29), time(2), utc(2026, 3, 29, 1)),  # 02:00-02:59 skipped: 03:00 CEST
        (BERLIN, date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1)),
        (NEW_YORK, date(2026, 3, 8), time(2, 15), utc(2026, 3, 8, 7)),  # 03:00 EDT
    ],
)
def test_a_skipped_local_time_is_the_first_instant_after_the_gap(
    tz: ZoneInfo, day: date, at: time, expected: datetime
) -> None:
    resolved = resolve_local(day, at, tz)
    assert resolved == expected
    assert resolved.astimezone(tz).time() == time(3)


@pytest.mark.parametrize(
    ("tz", "day", "at", "expected"),
    [
        (BERLIN, date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),  # 02:30 CEST, not CET
        (NEW_YORK, date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not EST
    ],
)
def test_a_repeated_local_time_is_its_first_occurrence(tz: ZoneInfo, day: date, at: time, expected: datetime) -> None:
    assert resolve_local(day, at, tz) == expected


# --- quiet windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "end"),
    [
        (local(BERLIN, 2026, 6, 1, 21, 59), None),
        (local(BERLIN, 2026, 6, 1, 22, 0), local(BERLIN, 2026, 6, 2, 7, 0)),
        (local(BERLIN, 2026, 6, 1, 23, 30), local(BERLIN, 2026, 6, 2, 7, 0)),
        (local(BERLIN, 2026, 6, 2, 3, 0), local(BERLIN, 2026, 6, 2, 7, 0)),
        (local(BERLIN, 2026, 6, 2, 6, 59), local(BERLIN, 2026, 6, 2, 7, 0)),
        (local(BERLIN, 2026, 6, 2, 7, 0), None),
        (local(BERLIN, 2026, 6, 2, 12, 0), None),
    ],
)
def test_a_window_across_midnight(at: datetime, end: datetime | None) -> None:
    found = quiet_window_end("22:00-07:00", BERLIN, at)
    assert found == end
    if found is not None:
        assert found.tzinfo is UTC


def test_the_window_is_read_in_the_zone_not_in_utc() -> None:
    # 21:30 UTC is 23:30 in Berlin in summer: inside; 21:30 in UTC itself would be outside.
    assert quiet_window_end("22:00-07:00", BERLIN, utc(2026, 6, 1, 21, 30)) == utc(2026, 6, 2, 5)
    assert quiet_window_end("22:00-07:00", ZoneInfo("UTC"), utc(2026, 6, 1, 21, 30)) is None


@pytest.mark.parametrize(
    ("clock", "end"),
    [((12, 59), None), ((13, 0), (14, 0)), ((13, 30), (14, 0)), ((13, 59), (14, 0)), ((14, 0), None), ((22, 0), None)],
)
def test_a_window_within_one_day(clock: tuple[int, int], end: tuple[int, int] | None) -> None:
    at = local(NEW_YORK, 2026, 6, 1, *clock)
    expected = local(NEW_YORK, 2026, 6, 1, *end).astimezone(UTC) if end else None
    assert quiet_window_end("13:00-14:00", NEW_YORK, at) == expected


def test_a_window_over_the_spring_forward_night_ends_at_local_seven() -> None:
    # 23:00 CET on 28 March to 07:00 CEST on 29 March: eight hours on the wall, seven in real time.
    end = quiet_window_end("22:00-07:00", BERLIN, local(BERLIN, 2026, 3, 28, 23, 0))
    assert end == utc(2026, 3, 29, 5)
    assert end - local(BERLIN, 2026, 3, 28, 23, 0) == timedelta(hours=7)


def test_a_window_over_the_fall_back_night_ends_at_local_seven() -> None:
    end = quiet_window_end("22:00-07:00", NEW_YORK, local(NEW_YORK, 2026, 10, 31, 23, 0))
    assert end == utc(2026, 11, 1, 12)  # 07:00 EST
    assert end - local(NEW_YORK, 2026, 10, 31, 23, 0) == timedelta(hours=9)


def test_a_window_ending_in_the_gap_ends_when_the_gap_does() -> None:
    assert quiet_window_end("22:00-02:30", BERLIN, local(BERLIN, 2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 1)


def test_a_window_ending_in_the_repeated_hour_ends_at_the_first_occurrence() -> None:
    at = local(NEW_YORK, 2026, 11, 1, 0, 30)  # EDT
    assert quiet_window_end("22:00-01:30", NEW_YORK, at) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT


def test_the_second_pass_through_the_repeated_hour_is_quiet_again_until_the_wall_clock_end() -> None:
    at = local(NEW_YORK, 2026, 11, 1, 1, 15, fold=1)  # 01:15 EST, after 01:30 EDT already passed
    assert quiet_window_end("22:00-01:30", NEW_YORK, at) == utc(2026, 11, 1, 6, 30)  # 01:30 EST


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        quiet_window_end("22:00-07:00", BERLIN, datetime(2026, 6, 1, 23, 0))


# DST changes in 2026 (UTC): random instants alone would rarely land near one.
TRANSITIONS = [
    utc(2026, 3, 29, 1),  # Europe/Berlin, spring forward
    utc(2026, 10, 25, 1),  # Europe/Berlin, fall back
    utc(2026, 3, 8, 7),  # America/New_York, spring forward
    utc(2026, 11, 1, 6),  # America/New_York, fall back
    utc(2026, 4, 4, 15),  # Australia/Lord_Howe, back 30 minutes
    utc(2026, 10, 3, 15, 30),  # Australia/Lord_Howe, forward 30 minutes
]
near_transitions_st = st.builds(
    lambda t, minutes: t + timedelta(minutes=minutes), st.sampled_from(TRANSITIONS), st.integers(-26 * 60, 26 * 60)
)
instants_st = st.one_of(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
    near_transitions_st,
)
zones_st = st.sampled_from([BERLIN, NEW_YORK, KOLKATA, KATHMANDU, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")])


@given(
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    tz=zones_st,
    now=instants_st,
)
@example(start=time(2, 1), end=time(2, 0), tz=ZoneInfo("America/New_York"), now=utc(2026, 3, 8, 6, 59))
def test_a_window_end_is_later_and_outside_the_window(start: time, end: time, tz: ZoneInfo, now: datetime) -> None:
    if start == end:
        return
    window = f"{start:%H:%M}-{end:%H:%M}"
    finish = quiet_window_end(window, tz, now)
    if finish is None:
        return
    assert finish.tzinfo is UTC
    assert now < finish <= now + timedelta(hours=26)
    again = quiet_window_end(window, tz, finish)
    # Unless its end fell in a spring-forward gap: the end moves to the gap's end, where a start in the same gap
    # lands too (02:01-02:00 in New York on 8 March), and the window closes and opens again at once.
    assert again is None or finish.astimezone(tz).time() != end, "at its end the window is over"


# --- digest boundaries -----------------------------------------------------------------------------


def test_no_digest_means_no_boundary() -> None:
    assert next_digest_at(Preferences(), utc(2026, 6, 1, 12)) is None
    assert next_digest_at(prefs(digest={"cadence": "off"}), utc(2026, 6, 1, 12)) is None
    assert next_digest_at(prefs(digest={"cadence": "off"}), utc(2026, 6, 1, 12), period_seconds=5) is None


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 6, 1, 12, 0), utc(2026, 6, 1, 13, 0)),
        (utc(2026, 6, 1, 12, 0, 0, 1), utc(2026, 6, 1, 13, 0)),
        (utc(2026, 6, 1, 12, 59, 59), utc(2026, 6, 1, 13, 0)),
    ],
)
def test_hourly_is_the_next_top_of_the_hour_strictly_after(after: datetime, expected: datetime) -> None:
    assert next_digest_at(hourly("UTC"), after) == expected


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 10, 30)),  # 15:30 IST -> 16:00 IST
        (utc(2026, 6, 1, 10, 30), utc(2026, 6, 1, 11, 30)),
        (utc(2026, 6, 1, 10, 45), utc(2026, 6, 1, 11, 30)),
    ],
)
def test_hourly_in_kolkata_falls_at_half_past_utc(after: datetime, expected: datetime) -> None:
    boundary = next_digest_at(hourly("Asia/Kolkata"), after)
    assert boundary == expected
    assert boundary is not None and boundary.astimezone(KOLKATA).minute == 0


def test_hourly_in_kathmandu_falls_at_quarter_past_utc() -> None:
    assert next_digest_at(hourly("Asia/Kathmandu"), utc(2026, 6, 1, 10, 0)) == utc(2026, 6, 1, 10, 15)


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        ("Europe/Berlin", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1)),  # 01:30 CET -> 03:00 CEST
        ("Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1)),  # 02:30 CEST -> 02:00 CET
        ("Europe/Berlin", utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 2)),  # 02:00 CET -> 03:00 CET
        ("America/New_York", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7)),  # 01:30 EST -> 03:00 EDT
        ("America/New_York", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6)),  # 01:30 EDT -> 01:00 EST
    ],
)
def test_hourly_across_dst_keeps_to_local_tops_of_the_hour(tz: str, after: datetime, expected: datetime) -> None:
    assert next_digest_at(hourly(tz), after) == expected


def test_daily_defaults_to_eight_local() -> None:
    assert next_digest_at(daily("Europe/Berlin", None), utc(2026, 6, 1, 12)) == utc(2026, 6, 2, 6)


@pytest.mark.parametrize(
    ("tz", "hour", "after", "expected"),
    [
        # Berlin, spring forward on 29 March: 08:00 CET, then 08:00 CEST 23 hours later.
        ("Europe/Berlin", 8, utc(2026, 3, 28, 7), utc(2026, 3, 29, 6)),
        # 02:00 does not exist on 29 March: the first instant after the gap, 03:00 CEST.
        ("Europe/Berlin", 2, utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),
        ("Europe/Berlin", 2, utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)),
        # Berlin, fall back on 25 October: 02:00 happens twice; the first (CEST) counts, once.
        ("Europe/Berlin", 2, utc(2026, 10, 24, 12), utc(2026, 10, 25, 0)),
        ("Europe/Berlin", 2, utc(2026, 10, 25, 0), utc(2026, 10, 26, 1)),
        ("Europe/Berlin", 8, utc(2026, 10, 24, 6), utc(2026, 10, 25, 7)),
        # New York, spring forward on 8 March: 02:00 does not exist, 03:00 EDT instead.
        ("America/New_York", 2, utc(2026, 3, 7, 12), utc(2026, 3, 8, 7)),
        ("America/New_York", 8, utc(2026, 3, 7, 13), utc(2026, 3, 8, 12)),
        # New York, fall back on 1 November: 01:00 EDT; 01:00 EST an hour later is not a second digest.
        ("America/New_York", 1, utc(2026, 10, 31, 12), utc(2026, 11, 1, 5)),
        ("America/New_York", 1, utc(2026, 11, 1, 5), utc(2026, 11, 2, 6)),
        ("America/New_York", 8, utc(2026, 10, 31, 12), utc(2026, 11, 1, 13)),
    ],
)
def test_daily_across_dst(tz: str, hour: int, after: datetime, expected: datetime) -> None:
    assert next_digest_at(daily(tz, hour), after) == expected


def test_daily_is_strictly_after() -> None:
    eight = local(BERLIN, 2026, 6, 1, 8, 0)
    assert next_digest_at(daily("Europe/Berlin", 8), eight) == local(BERLIN, 2026, 6, 2, 8, 0)
    assert next_digest_at(daily("Europe/Berlin", 8), eight - timedelta(microseconds=1)) == eight


def test_hourly_boundaries_inside_quiet_hours_move_to_the_window_end() -> None:
    p = hourly("Europe/Berlin", quiet_hours={"window": "22:00-07:00"})
    assert next_digest_at(p, local(BERLIN, 2026, 6, 1, 20, 10)) == local(BERLIN, 2026, 6, 1, 21, 0)
    assert next_digest_at(p, local(BERLIN, 2026, 6, 1, 21, 10)) == local(BERLIN, 2026, 6, 2, 7, 0)
    assert next_digest_at(p, local(BERLIN, 2026, 6, 2, 3, 0)) == local(BERLIN, 2026, 6, 2, 7, 0)
    assert next_digest_at(p, local(BERLIN, 2026, 6, 2, 7, 0)) == local(BERLIN, 2026, 6, 2, 8, 0)


def test_a_daily_boundary_inside_quiet_hours_moves_to_the_window_end() -> None:
    p = prefs("Europe/Berlin", digest={"cadence": "daily", "hour": 23}, quiet_hours={"window": "22:30-06:45"})
    assert next_digest_at(p, local(BERLIN, 2026, 6, 1, 12, 0)) == local(BERLIN, 2026, 6, 2, 6, 45)


def test_quiet_hours_to_the_digest_use_the_hourly_digest_when_it_is_off() -> None:
    p = prefs("Europe/Berlin", quiet_hours={"window": "22:00-07:00", "during": "digest"})
    assert digest_cadence(p) is DigestCadence.hourly
    assert next_digest_at(p, local(BERLIN, 2026, 6, 1, 23, 0)) == local(BERLIN, 2026, 6, 2, 7, 0)
    assert digest_cadence(prefs(quiet_hours={"window": "22:00-07:00"})) is DigestCadence.off


def test_period_seconds_gives_the_next_multiple_since_the_epoch() -> None:
    p = hourly("Asia/Kolkata")
    epoch = datetime.fromtimestamp(0, UTC)
    assert next_digest_at(p, epoch + timedelta(seconds=100.5), period_seconds=10) == epoch + timedelta(seconds=110)
    assert next_digest_at(p, epoch + timedelta(seconds=110), period_seconds=10) == epoch + timedelta(seconds=120)
    assert next_digest_at(p, utc(2026, 6, 1, 12, 0, 1), period_seconds=2) == utc(2026, 6, 1, 12, 0, 2)
    assert next_digest_at(daily("UTC", 8), utc(2026, 6, 1, 12), period_seconds=0.5) == utc(2026, 6, 1, 12, 0, 0, 500000)


def test_period_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        next_digest_at(hourly("UTC"), utc(2026, 6, 1), period_seconds=0)


@given(
    tz=zones_st,
    hour=st.one_of(st.none(), st.integers(0, 23)),
    cadence=st.sampled_from(["hourly", "daily"]),
    after=instants_st,
)
@example(tz=ZoneInfo("Australia/Lord_Howe"), hour=2, cadence="daily", after=utc(2026, 10, 3, 12))  # 02:00-02:29 skipped
@example(tz=BERLIN, hour=2, cadence="daily", after=utc(2026, 10, 25, 0))  # 02:00 twice: once
# Lord Howe turns back 30 minutes at 02:00: from 01:29 (+11) the next local :00 is 02:00 (+10:30), 61 min on.
@example(tz=ZoneInfo("Australia/Lord_Howe"), hour=None, cadence="hourly", after=utc(2026, 4, 4, 14, 29))
def test_boundaries_are_local_and_strictly_after(tz: ZoneInfo, hour: int | None, cadence: str, after: datetime) -> None:
    boundary = next_digest_at(prefs(tz.key, digest={"cadence": cadence, "hour": hour}), after)
    assert boundary is not None and boundary.tzinfo is UTC
    # A period plus at most one clock change (which turns back by an hour at most).
    assert after < boundary <= after + timedelta(hours=2 if cadence == "hourly" else 25)
    clock = boundary.astimezone(tz)
    if cadence == "hourly":
        assert (clock.minute, clock.second, clock.microsecond) == (0, 0, 0)
    else:  # the chosen hour that day, as resolve_local places it (on a gap day: the end of the gap)
        chosen = time(8 if hour is None else hour)
        assert boundary == resolve_local(clock.date(), chosen, tz)
        assert resolve_local(clock.date() - timedelta(days=1), chosen, tz) <= after, "no earlier boundary was skipped"
