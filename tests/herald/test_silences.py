"""Silences, pure: the models refuse what can't be a silence (naming the field), and the match holds critical
notifications only when asked to, and never outside a silence's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from herald.domain.silences import SilenceProblem, expired, first_match, matches, new_silence, query_for, state_of
from herald.domain.validation import describe
from herald.models import (
    AgentNotification,
    Priority,
    Silence,
    SilenceInput,
    SilenceMatchers,
    SilenceQuery,
    SilenceState,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def body(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "matchers": {"agent_id": "deploy-bot"},
        "ends_at": (NOW + timedelta(hours=1)).isoformat(),
        "comment": "deploy window",
    }
    values.update(fields)
    return values


def fields_refused(data: dict[str, Any]) -> list[str | None]:
    with pytest.raises(ValidationError) as refused:
        SilenceInput.model_validate(data)
    return [problem.field for problem in describe(refused.value.errors())]


def silence(
    matchers: dict[str, Any], *, starts: timedelta = timedelta(0), ends: timedelta = timedelta(hours=1)
) -> Silence:
    return Silence(
        silence_id="s1",
        matchers=SilenceMatchers.model_validate(matchers),
        starts_at=NOW + starts,
        ends_at=NOW + ends,
        comment="c",
        created_by="admin",
        created_at=NOW - timedelta(hours=1),
    )


def query(**fields: Any) -> SilenceQuery:
    values: dict[str, Any] = {"notification_id": "n1", "agent_id": "deploy-bot", "user_id": "ada", "priority": "high"}
    values.update(fields)
    return SilenceQuery.model_validate(values)


def test_a_silence_of_everything_is_refused_naming_matchers() -> None:
    assert fields_refused(body(matchers={})) == ["matchers"]
    assert fields_refused(body(matchers={"max_priority": "critical"})) == ["matchers"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"matchers": {"agent_id": ""}}, "matchers.agent_id"),
        ({"matchers": {"user_id": "ada", "max_priority": "urgent"}}, "matchers.max_priority"),
        ({"matchers": {"dedup_key": ""}}, "matchers.dedup_key"),
        ({"matchers": {"agent_id": "a", "colour": "red"}}, "matchers.colour"),
        ({"comment": "   "}, "comment"),
        ({"comment": "x" * 501}, "comment"),
        ({"ends_at": "2026-11-20T13:00:00"}, "ends_at"),
        ({"ends_at": 1800000000}, "ends_at"),
        ({"starts_at": "2026-11-20T13:00:00"}, "starts_at"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict[str, Any], field: str) -> None:
    assert fields_refused(body(**fields)) == [field]


def test_comment_and_ends_at_are_required() -> None:
    data = body()
    del data["comment"], data["ends_at"]
    assert sorted(f or "" for f in fields_refused(data)) == ["comment", "ends_at"]


def test_max_priority_defaults_to_high() -> None:
    assert SilenceInput.model_validate(body()).matchers.max_priority is Priority.high


def test_new_silence_starts_now_and_must_end_after_its_start_and_in_the_future() -> None:
    made = new_silence(SilenceInput.model_validate(body()), "admin", NOW)
    assert made.starts_at == NOW and made.ends_at == NOW + timedelta(hours=1) and made.created_by == "admin"
    later = (NOW + timedelta(hours=2)).isoformat()
    with pytest.raises(SilenceProblem) as before_start:
        new_silence(SilenceInput.model_validate(body(starts_at=later)), "admin", NOW)
    assert before_start.value.field == "ends_at" and "after starts_at" in str(before_start.value)
    past = (NOW - timedelta(minutes=1)).isoformat()
    with pytest.raises(SilenceProblem) as in_the_past:
        new_silence(
            SilenceInput.model_validate(body(starts_at=(NOW - timedelta(hours=1)).isoformat(), ends_at=past)),
            "admin",
            NOW,
        )
    assert in_the_past.value.field == "ends_at" and "in the future" in str(in_the_past.value)


def test_every_matcher_given_must_equal_the_notifications_field() -> None:
    assert matches(silence({"agent_id": "deploy-bot"}), query(), NOW)
    assert not matches(silence({"agent_id": "other"}), query(), NOW)
    assert matches(silence({"agent_id": "deploy-bot", "user_id": "ada"}), query(), NOW)
    assert not matches(silence({"agent_id": "deploy-bot", "user_id": "bob"}), query(), NOW)
    assert matches(silence({"rule": "disk-full"}), query(rule="disk-full"), NOW)
    assert not matches(silence({"rule": "disk-full"}), query(), NOW), "a notification no rule fired"
    assert matches(silence({"dedup_key": "region-eu"}), query(dedup_key="region-eu"), NOW)
    assert not matches(silence({"dedup_key": "region-eu"}), query(dedup_key="region-us"), NOW)


def test_the_window_is_starts_at_inclusive_to_ends_at_exclusive() -> None:
    s = silence({"user_id": "ada"}, starts=timedelta(minutes=10), ends=timedelta(minutes=20))
    assert state_of(s, NOW) is SilenceState.pending and not matches(s, query(), NOW)
    assert matches(s, query(), NOW + timedelta(minutes=10))
    assert state_of(s, NOW + timedelta(minutes=20)) is SilenceState.expired
    assert not matches(s, query(), NOW + timedelta(minutes=20))


def test_first_match_is_the_silence_made_first() -> None:
    old = silence({"user_id": "ada"}).model_copy(update={"silence_id": "old", "created_at": NOW - timedelta(days=1)})
    new = silence({"agent_id": "deploy-bot"}).model_copy(update={"silence_id": "new"})
    other = silence({"agent_id": "other"}).model_copy(update={"silence_id": "x", "created_at": NOW - timedelta(days=9)})
    assert first_match([new, other, old], query(), NOW) == old
    assert first_match([other], query(), NOW) is None


def test_expiring_ends_it_now_and_an_ended_one_stays() -> None:
    s = silence({"user_id": "ada"})
    done = expired(s, NOW + timedelta(minutes=5))
    assert (
        done.ends_at == NOW + timedelta(minutes=5)
        and state_of(done, NOW + timedelta(minutes=5)) is SilenceState.expired
    )
    assert expired(done, NOW + timedelta(minutes=30)) == done
    ahead = expired(silence({"user_id": "ada"}, starts=timedelta(hours=1), ends=timedelta(hours=2)), NOW)
    assert ahead.starts_at == ahead.ends_at == NOW
    assert not any(matches(ahead, query(), NOW + timedelta(minutes=m)) for m in range(0, 180, 15))


def test_query_for_takes_ids_priority_rule_and_dedup_key() -> None:
    n = AgentNotification(agent_id="a", user_id="u", title="secret title", priority="low", dedup_key="k")
    assert query_for(n, "r") == SilenceQuery(
        notification_id=n.notification_id, agent_id="a", user_id="u", priority=Priority.low, rule="r", dedup_key="k"
    )


# --- properties ----------------------------------------------------------------------------------------------

ids = st.sampled_from(["a", "b"])
optional_ids = st.none() | ids
priorities = st.sampled_from(list(Priority))
offsets = st.integers(min_value=-10_000, max_value=10_000).map(lambda s: timedelta(seconds=s))


@st.composite
def silences(draw: st.DrawFn) -> Silence:
    matchers = {
        "agent_id": draw(optional_ids),
        "rule": draw(optional_ids),
        "user_id": draw(optional_ids),
        "dedup_key": draw(optional_ids),
    }
    if all(v is None for v in matchers.values()):
        matchers["agent_id"] = draw(ids)
    start = draw(offsets)
    length = draw(st.integers(min_value=1, max_value=10_000).map(lambda s: timedelta(seconds=s)))
    return silence({**matchers, "max_priority": draw(priorities)}, starts=start, ends=start + length)


@st.composite
def queries(draw: st.DrawFn) -> SilenceQuery:
    return query(
        agent_id=draw(ids),
        user_id=draw(ids),
        rule=draw(optional_ids),
        dedup_key=draw(optional_ids),
        priority=draw(priorities),
    )


@given(silences(), queries(), offsets)
def test_critical_is_never_matched_unless_max_priority_is_critical(s: Silence, q: SilenceQuery, at: timedelta) -> None:
    if q.priority is Priority.critical and s.matchers.max_priority is not Priority.critical:
        assert not matches(s, q, NOW + at)


@given(silences(), queries(), offsets)
def test_ended_or_not_yet_started_silences_never_match(s: Silence, q: SilenceQuery, at: timedelta) -> None:
    when = NOW + at
    if when < s.starts_at or when >= s.ends_at:
        assert not matches(s, q, when)


@given(silences(), queries(), offsets)
def test_a_silence_matches_only_what_its_matchers_name(s: Silence, q: SilenceQuery, at: timedelta) -> None:
    m = s.matchers
    if matches(s, q, NOW + at):
        assert m.agent_id in (None, q.agent_id) and m.user_id in (None, q.user_id)
        assert m.rule in (None, q.rule) and m.dedup_key in (None, q.dedup_key)
        assert q.priority.rank <= m.max_priority.rank


@given(st.lists(silences(), max_size=5), queries(), offsets)
def test_first_match_is_one_that_matches_or_none_when_none_does(
    found: list[Silence], q: SilenceQuery, at: timedelta
) -> None:
    first = first_match(found, q, NOW + at)
    assert (first is None) == (not any(matches(s, q, NOW + at) for s in found))
    assert first is None or matches(first, q, NOW + at)
