"""Throttling's pure decision (herald/domain/throttle.py) and the store's atomic claim of a window's slots."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.adapters.store import Store
from herald.domain import throttle
from herald.domain.routing import route_for
from herald.domain.throttle import AGENT_SCOPE, Decision, Limits, decide, merge_limits, window
from herald.models import ChannelName, EnabledChannels, Preferences, Priority

# The store tests' fixture: each claim test runs on SQLite and on PostgreSQL (skipped when it isn't running).
from tests.herald import test_store

store = test_store.store

NOW = datetime(2026, 11, 20, 14, 37, 12, tzinfo=UTC)
CHANNELS = [ChannelName.push, ChannelName.email, ChannelName.sms]

# --- the limits, merged --------------------------------------------------------------------------------------


def test_limits_merge_the_agents_entry_over_the_default_field_by_field() -> None:
    prefs = Preferences.model_validate(
        {
            "default": {"max_per_hour": 10, "sms": {"enabled": True, "max_per_hour": 2}},
            "agents": {"noisy": {"max_per_hour": 3, "email": {"max_per_hour": 5}}, "quiet": {"push": False}},
        }
    )
    assert merge_limits(prefs, "noisy") == Limits(agent=3, channels={ChannelName.email: 5, ChannelName.sms: 2})
    assert merge_limits(prefs, "quiet") == Limits(agent=10, channels={ChannelName.sms: 2})
    assert merge_limits(Preferences(), "anyone") == Limits()
    assert not Limits().any and Limits(agent=1).any and Limits(channels={ChannelName.sms: 1}).any


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"default": {"max_per_hour": 0}}, "default.max_per_hour"),
        ({"agents": {"a": {"max_per_hour": -1}}}, "agents.a.max_per_hour"),
        ({"default": {"sms": {"max_per_hour": 0}}}, "default.sms.max_per_hour"),
        ({"default": {"max_per_hour": 1.5}}, "default.max_per_hour"),
        ({"default": {"max_per_hour": True}}, "default.max_per_hour"),
    ],
)
def test_max_per_hour_below_one_or_not_a_whole_number_is_refused_naming_the_field(
    document: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError) as refused:
        Preferences.model_validate(document)
    assert field in str(refused.value)


# --- the window: the clock hour ---------------------------------------------------------------------------------


def test_the_window_is_the_clock_hour_in_utc() -> None:
    assert window(NOW) == (datetime(2026, 11, 20, 14, tzinfo=UTC), datetime(2026, 11, 20, 15, tzinfo=UTC))
    top = datetime(2026, 11, 20, 15, tzinfo=UTC)
    assert window(top)[0] == top  # the hour's first instant is in it
    assert window(top - timedelta(microseconds=1))[1] == top
    assert window(NOW.astimezone(ZoneInfo("Europe/Berlin"))) == window(NOW)  # any zone in, the same UTC hour out


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_every_instant_is_in_exactly_its_window(now: datetime) -> None:
    start, end = window(now, 3600)
    assert start <= now < end and end - start == timedelta(hours=1)
    assert start.minute == start.second == start.microsecond == 0


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        window(datetime(2026, 11, 20, 14))


# --- the decision ------------------------------------------------------------------------------------------------


def test_under_the_agent_limit_it_is_sent_and_claims_the_agents_slot() -> None:
    assert decide(Limits(agent=2), {AGENT_SCOPE: 1}, CHANNELS) == Decision(claims=(AGENT_SCOPE,))


def test_at_the_agent_limit_it_is_throttled_and_claims_nothing() -> None:
    assert decide(Limits(agent=2), {AGENT_SCOPE: 2}, CHANNELS) == Decision(throttled=True)


def test_a_channel_at_its_limit_is_dropped_and_the_others_are_sent() -> None:
    limits = Limits(agent=5, channels={ChannelName.sms: 1, ChannelName.email: 3})
    decision = decide(limits, {AGENT_SCOPE: 1, "sms": 1, "email": 2}, CHANNELS)
    assert decision == Decision(dropped=(ChannelName.sms,), claims=(AGENT_SCOPE, "email"))


def test_every_planned_channel_at_its_limit_throttles_it_as_the_agent_limit_does() -> None:
    limits = Limits(channels={ChannelName.sms: 1})
    assert decide(limits, {"sms": 1}, [ChannelName.sms]) == Decision(throttled=True, dropped=(ChannelName.sms,))


@given(
    agent=st.none() | st.integers(1, 5),
    channel_limits=st.dictionaries(st.sampled_from(CHANNELS), st.integers(1, 5)),
    counts=st.dictionaries(st.sampled_from([AGENT_SCOPE, *(c.value for c in CHANNELS)]), st.integers(0, 7)),
    planned=st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True),
)
def test_a_decision_never_claims_past_a_limit_and_never_drops_everything_unthrottled(
    agent: int | None, channel_limits: dict[ChannelName, int], counts: dict[str, int], planned: list[ChannelName]
) -> None:
    limits = Limits(agent=agent, channels=channel_limits)
    decision = decide(limits, counts, planned)
    if decision.throttled:
        assert decision.claims == ()
        agent_full = agent is not None and counts.get(AGENT_SCOPE, 0) >= agent
        assert agent_full or set(decision.dropped) == set(planned)
        return
    kept = [c for c in planned if c not in decision.dropped]
    assert kept, "a notification that is sent keeps a channel"
    for scope in decision.claims:
        limit = agent if scope == AGENT_SCOPE else channel_limits[ChannelName(scope)]
        assert limit is not None and counts.get(scope, 0) < limit
    for channel in decision.dropped:
        assert counts.get(channel.value, 0) >= channel_limits[channel]
    assert (AGENT_SCOPE in decision.claims) == (agent is not None)


@pytest.mark.parametrize(
    ("priority", "asks", "routed", "expected"),
    [
        (Priority.medium, False, EnabledChannels(enabled={ChannelName.email: True}), True),
        (Priority.critical, False, EnabledChannels(enabled={ChannelName.email: True}), False),
        (Priority.medium, True, EnabledChannels(enabled={ChannelName.email: True}), False),
        (Priority.low, False, EnabledChannels(enabled={ChannelName.email: True}, digest=True), False),
        (Priority.medium, False, EnabledChannels(enabled={ChannelName.email: True}, hold_until=NOW), False),
        (Priority.medium, False, EnabledChannels(enabled={ChannelName.email: False}), False),
    ],
)
def test_only_a_notification_sent_now_is_throttled_never_a_critical_one_or_a_question(
    priority: Priority, asks: bool, routed: EnabledChannels, expected: bool
) -> None:
    assert throttle.applies(routed, priority, asks, [ChannelName.email]) is expected


def test_applying_a_decision_turns_dropped_channels_off_and_sends_a_throttled_one_to_the_digest_or_the_summary() -> (
    None
):
    prefs = Preferences.model_validate({"default": {"sms": {"max_per_hour": 1}}})
    routed = route_for("a", Priority.high, CHANNELS, prefs, NOW)
    end = window(NOW)[1]
    dropped = throttle.apply(routed, Decision(dropped=(ChannelName.sms,)), end, digest_on=True)
    assert dropped.enabled[ChannelName.sms] is False and dropped.enabled[ChannelName.email] is True
    assert dropped.throttled_channels == [ChannelName.sms] and not dropped.throttled and not dropped.digest
    to_digest = throttle.apply(routed, Decision(throttled=True), end, digest_on=True)
    assert to_digest.throttled and to_digest.digest and to_digest.throttle_until == end
    to_summary = throttle.apply(routed, Decision(throttled=True), end, digest_on=False)
    assert to_summary.throttled and not to_summary.digest and to_summary.throttle_until == end
    assert throttle.apply(routed, Decision(claims=(AGENT_SCOPE,)), end, digest_on=True) is routed


def test_the_summary_says_how_many_more_and_lists_them() -> None:
    from herald.models import DigestItem

    items = [
        DigestItem(notification_id=f"n{i}", agent_id="deploy-bot", title=f"build {i}", priority=Priority.medium,
                   created_at=NOW + timedelta(minutes=i))
        for i in range(3)
    ]  # fmt: skip
    summary = throttle.summary_notification("ada", "deploy-bot", "throttle-1", items, NOW)
    assert summary.title == "3 more from deploy-bot"
    assert all(f"build {i}" in summary.body for i in range(3))
    assert summary.agent_id == "deploy-bot" and summary.channels == [ChannelName.email]
    assert summary.dedup_key == "throttle/throttle-1"


# --- the store's claim ---------------------------------------------------------------------------------------------


async def test_a_claim_takes_slots_until_the_limit_and_a_new_window_starts_from_zero(store: Store) -> None:
    limits = Limits(agent=2)
    start = window(NOW)[0]
    results = [await store.throttle.claim(f"n{i}", "ada", "bot", start, limits, [ChannelName.email]) for i in range(3)]
    assert [r.throttled for r in results] == [False, False, True]
    assert await store.throttle.counts("ada", "bot", start) == {AGENT_SCOPE: 2}
    assert not (await store.throttle.claim("n3", "ada", "other-bot", start, limits, [ChannelName.email])).throttled
    later = start + timedelta(hours=1)
    assert not (await store.throttle.claim("n4", "ada", "bot", later, limits, [ChannelName.email])).throttled
    assert await store.throttle.counts("ada", "bot", start) == {}  # the past window's rows are pruned


async def test_a_retried_claim_repeats_its_decision_and_counts_nothing_twice(store: Store) -> None:
    limits = Limits(agent=1, channels={ChannelName.sms: 1})
    start = window(NOW)[0]
    first = await store.throttle.claim("n1", "ada", "bot", start, limits, [ChannelName.sms])
    again = await store.throttle.claim("n1", "ada", "bot", start, limits, [ChannelName.sms])
    assert not first.throttled and not again.throttled
    assert await store.throttle.counts("ada", "bot", start) == {AGENT_SCOPE: 1, "sms": 1}
    over = await store.throttle.claim("n2", "ada", "bot", start, Limits(channels={ChannelName.sms: 1}), CHANNELS)
    assert over.dropped == (ChannelName.sms,) and not over.throttled
    assert (await store.throttle.claim("n2", "ada", "bot", start, limits, CHANNELS)).dropped == (ChannelName.sms,)


async def test_concurrent_claims_never_take_more_slots_than_the_limit(store: Store) -> None:
    limits = Limits(agent=3)
    start = window(NOW)[0]
    results = await asyncio.gather(
        *(store.throttle.claim(f"n{i}", "ada", "bot", start, limits, [ChannelName.email]) for i in range(12))
    )
    assert sum(not r.throttled for r in results) == 3
    assert await store.throttle.counts("ada", "bot", start) == {AGENT_SCOPE: 3}
