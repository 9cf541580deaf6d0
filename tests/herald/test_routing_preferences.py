"""routing.route: the whole preference decision (switches, minimum priorities, quiet hours, digest), as properties
over random preferences, notifications and instants, and as the issue's worked example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from herald.domain.routing import (
    CONTACT_CHANNELS,
    MAX_HOLD,
    digest_collects,
    escalation_channels,
    fallback_channel,
    merge_min_priorities,
    merge_preferences,
    merge_user_min_priority,
    plan_channels,
    route,
)
from herald.domain.schedule import quiet_hours_end
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelPreference,
    ChannelSwitches,
    DigestCadence,
    DigestPriorities,
    DigestSettings,
    EnabledChannels,
    Preferences,
    Priority,
    QuietHours,
    QuietHoursAction,
)

PUSH, EMAIL, SMS, WEBHOOK = ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook
LOW, MEDIUM, HIGH, CRITICAL = Priority.low, Priority.medium, Priority.high, Priority.critical
BERLIN = ZoneInfo("Europe/Berlin")
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN)


def notification(
    priority: Priority = MEDIUM, agent_id: str = "coding-agent", channels: list[ChannelName] | None = None
) -> AgentNotification:
    return AgentNotification(
        agent_id=agent_id, user_id="alice", title="t", priority=priority, channels=channels or [PUSH, EMAIL, SMS]
    )


def on(routed: EnabledChannels) -> set[ChannelName]:
    return {c for c, enabled in routed.enabled.items() if enabled}


# --- the example ----------------------------------------------------------------------------
# "Push for everything from my coding agent, SMS only if critical, nothing between 22:00 and 07:00 Berlin
# time, low priority as an hourly digest."

EXAMPLE = Preferences.model_validate(
    {
        "time_zone": "Europe/Berlin",
        "default": {
            "push": {"min_priority": "high"},
            "email": True,
            "sms": {"enabled": True, "min_priority": "critical"},
        },
        "agents": {"coding-agent": {"push": {"min_priority": "low"}}},
        "quiet_hours": {"window": "22:00-07:00"},
        "digest": {"cadence": "hourly", "priorities": "low"},
    }
)


def test_example_coding_agent_pushes_everything_else_only_high() -> None:
    assert on(route(notification(MEDIUM), EXAMPLE, NOON)) == {PUSH, EMAIL, WEBHOOK}
    assert on(route(notification(MEDIUM, agent_id="batch-agent"), EXAMPLE, NOON)) == {EMAIL, WEBHOOK}
    assert PUSH in on(route(notification(HIGH, agent_id="batch-agent"), EXAMPLE, NOON))


def test_example_sms_only_when_critical() -> None:
    assert SMS not in on(route(notification(HIGH), EXAMPLE, NOON))
    assert SMS in on(route(notification(CRITICAL), EXAMPLE, NOON))


def test_example_low_goes_to_the_digest_day_and_night() -> None:
    assert route(notification(LOW), EXAMPLE, NOON).digest is True
    night = route(notification(LOW), EXAMPLE, datetime(2026, 6, 1, 23, 0, tzinfo=BERLIN))
    assert night.digest is True and night.hold_until is None


def test_example_nothing_between_22_and_7_berlin_but_critical() -> None:
    for at in (datetime(2026, 6, 1, 22, 0, tzinfo=BERLIN), datetime(2026, 6, 2, 6, 59, tzinfo=BERLIN)):
        held = route(notification(HIGH), EXAMPLE, at)
        assert held.hold_until == datetime(2026, 6, 2, 7, 0, tzinfo=BERLIN) and held.digest is False
        assert held.hold_until is not None and held.hold_until.tzinfo is UTC
        critical = route(notification(CRITICAL), EXAMPLE, at)
        assert critical.hold_until is None and critical.digest is False
    assert route(notification(HIGH), EXAMPLE, datetime(2026, 6, 1, 21, 59, tzinfo=BERLIN)).hold_until is None
    assert route(notification(HIGH), EXAMPLE, datetime(2026, 6, 2, 7, 0, tzinfo=BERLIN)).hold_until is None


# --- examples -----------------------------------------------------------------------------------------


def prefs(**fields: Any) -> Preferences:
    return Preferences.model_validate(fields)


def test_without_the_new_fields_route_is_the_merged_switches() -> None:
    seed = prefs(default={"push": True, "email": True, "sms": False}, agents={"batch-agent": {"email": False}})
    for priority in Priority:
        routed = route(notification(priority, agent_id="batch-agent"), seed, NOON)
        assert routed.hold_until is None and routed.digest is False
        assert on(routed) == {PUSH, WEBHOOK}


def test_a_channel_minimum_priority_turns_it_off_below() -> None:
    p = prefs(default={"email": {"min_priority": "high"}})
    assert EMAIL not in on(route(notification(MEDIUM), p, NOON))
    assert EMAIL in on(route(notification(HIGH), p, NOON))


def test_the_agent_entry_overrides_one_field_and_inherits_the_other() -> None:
    p = prefs(default={"sms": {"enabled": False, "min_priority": "critical"}}, agents={"pager": {"sms": True}})
    assert merge_preferences(p, "pager")[SMS] is True
    assert merge_min_priorities(p, "pager")[SMS] is CRITICAL
    assert SMS not in on(route(notification(HIGH, agent_id="pager"), p, NOON))
    assert SMS in on(route(notification(CRITICAL, agent_id="pager"), p, NOON))
    assert SMS not in on(route(notification(CRITICAL, agent_id="other"), p, NOON))


def test_below_the_user_wide_minimum_nothing_is_enabled_nor_kept() -> None:
    p = prefs(default={"min_priority": "high"}, digest={"cadence": "hourly"}, quiet_hours={"window": "00:00-23:59"})
    routed = route(notification(LOW), p, NOON)
    assert routed == EnabledChannels(enabled=dict.fromkeys(ChannelName, False))
    assert route(notification(MEDIUM), p, NOON).hold_until is None
    assert on(route(notification(CRITICAL), p, NOON)) == set(ChannelName) - set(CONTACT_CHANNELS)


def test_an_agent_may_lower_the_user_wide_minimum() -> None:
    p = prefs(default={"min_priority": "high"}, agents={"chatty": {"min_priority": "low"}})
    assert merge_user_min_priority(p, "chatty") is LOW and merge_user_min_priority(p, "quiet") is HIGH
    assert on(route(notification(LOW, agent_id="chatty", channels=[PUSH]), p, NOON)) == {PUSH, EMAIL, WEBHOOK}


def test_digest_priorities_low_and_medium() -> None:
    p = prefs(digest={"cadence": "daily", "priorities": "low_and_medium"})
    assert [route(notification(x), p, NOON).digest for x in Priority] == [True, True, False, False]
    assert digest_collects(prefs(digest={"cadence": "off", "priorities": "low_and_medium"}), LOW) is False


def test_quiet_hours_to_the_digest_even_with_the_digest_off() -> None:
    p = prefs(time_zone="Europe/Berlin", quiet_hours={"window": "22:00-07:00", "during": "digest"})
    night = datetime(2026, 6, 1, 23, 0, tzinfo=BERLIN)
    assert route(notification(HIGH), p, night) == route(notification(HIGH), p, NOON).model_copy(update={"digest": True})
    assert route(notification(HIGH), p, NOON).digest is False
    assert route(notification(CRITICAL), p, night).digest is False


def test_what_no_requested_channel_carries_is_neither_held_nor_digested() -> None:
    p = prefs(default={"email": False}, digest={"cadence": "hourly"}, quiet_hours={"window": "00:00-23:59"})
    assert route(notification(LOW, channels=[EMAIL]), p, NOON) == route(notification(LOW, channels=[EMAIL]), p, NOON)
    for priority in (LOW, MEDIUM):
        routed = route(notification(priority, channels=[EMAIL, SMS]), p, NOON)
        assert routed.digest is False and routed.hold_until is None
        assert plan_channels(notification(priority, channels=[EMAIL, SMS]), routed.enabled) == []


def test_a_hold_lasts_at_most_a_day() -> None:
    # 22:00-21:59 on the night New York falls back is 24 h 59 min long in real time.
    p = prefs(time_zone="America/New_York", quiet_hours={"window": "22:00-21:59"})
    now = datetime(2026, 10, 31, 22, 0, tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)  # real-time sums
    assert quiet_hours_end(p, now) == now + timedelta(hours=24, minutes=59)
    assert route(notification(HIGH), p, now).hold_until == now + MAX_HOLD


# --- properties ---------------------------------------------------------------------------------------

priorities_st = st.sampled_from(list(Priority))
maybe_priority_st = st.one_of(st.none(), priorities_st)
channels_st = st.sampled_from(list(ChannelName))
setting_st = st.one_of(
    st.none(),
    st.booleans(),
    st.builds(ChannelPreference, enabled=st.one_of(st.none(), st.booleans()), min_priority=maybe_priority_st),
)
level_st = st.builds(
    ChannelSwitches,
    push=setting_st,
    email=setting_st,
    sms=setting_st,
    webhook=setting_st,
    min_priority=maybe_priority_st,
)
agent_ids_st = st.sampled_from(["a", "b", "coding-agent"])
clock_st = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda hm: f"{hm[0]:02d}:{hm[1]:02d}")
window_st = st.tuples(clock_st, clock_st).filter(lambda w: w[0] != w[1]).map("-".join)
quiet_st = st.one_of(
    st.none(), st.builds(QuietHours, window=window_st, during=st.one_of(st.none(), st.sampled_from(QuietHoursAction)))
)
digest_st = st.one_of(
    st.none(),
    st.builds(
        DigestSettings,
        cadence=st.sampled_from(DigestCadence),
        hour=st.one_of(st.none(), st.integers(0, 23)),
        priorities=st.one_of(st.none(), st.sampled_from(DigestPriorities)),
    ),
)
zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]
preferences_st = st.builds(
    Preferences,
    default=level_st,
    agents=st.dictionaries(agent_ids_st, level_st, max_size=3),
    time_zone=st.one_of(st.none(), st.sampled_from(zones)),
    quiet_hours=quiet_st,
    digest=digest_st,
)
notifications_st = st.builds(
    AgentNotification,
    agent_id=agent_ids_st,
    user_id=st.just("alice"),
    title=st.just("t"),
    priority=priorities_st,
    channels=st.lists(channels_st, min_size=1, max_size=4),
)
# DST changes in 2026 (UTC), so instants near them come up often, not by luck.
TRANSITIONS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 7, tzinfo=UTC),
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2026, 4, 4, 15, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
]
instants_st = st.one_of(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC)),
    st.builds(lambda t, m: t + timedelta(minutes=m), st.sampled_from(TRANSITIONS), st.integers(-26 * 60, 26 * 60)),
)
order_st = st.lists(channels_st, max_size=6)
used_st = st.sets(channels_st)


@given(p=preferences_st, n=notifications_st, now=instants_st, order=order_st, used=used_st)
def test_a_disabled_channel_is_never_used(
    p: Preferences, n: AgentNotification, now: datetime, order: list[ChannelName], used: set[ChannelName]
) -> None:
    routed = route(n, p, now)
    disabled = {c for c, enabled in merge_preferences(p, n.agent_id).items() if not enabled}
    assert disabled.isdisjoint(on(routed))
    assert disabled.isdisjoint(plan_channels(n, routed.enabled))
    assert fallback_channel(None, order, routed.enabled, n.priority, used) not in disabled
    assert disabled.isdisjoint(escalation_channels(order, routed.enabled, n.priority, used))


@given(p=preferences_st, n=notifications_st, now=instants_st, order=order_st, used=used_st)
def test_sms_is_never_used_for_low_or_medium(
    p: Preferences, n: AgentNotification, now: datetime, order: list[ChannelName], used: set[ChannelName]
) -> None:
    routed = route(n, p, now)
    if n.priority in (LOW, MEDIUM):
        assert routed.enabled[SMS] is False
        assert SMS not in plan_channels(n, routed.enabled)
        assert fallback_channel(None, order, routed.enabled, n.priority, used) is not SMS
        assert SMS not in escalation_channels(order, routed.enabled, n.priority, used)


@given(p=preferences_st, n=notifications_st, now=instants_st)
def test_critical_never_waits_for_quiet_hours_nor_the_digest(
    p: Preferences, n: AgentNotification, now: datetime
) -> None:
    critical = route(n.model_copy(update={"priority": CRITICAL}), p, now)
    assert critical.hold_until is None and critical.digest is False


def _with_default_replaced_where_the_agent_decides(p: Preferences, agent_id: str, data: st.DataObject) -> Preferences:
    """The same preferences with every default field that `agent_id`'s entry sets replaced by something random."""
    agent = p.agents.get(agent_id)
    if agent is None:
        return p
    default = p.default
    changes: dict[str, Any] = {}
    for channel in ChannelName:
        mine, theirs = agent.setting(channel), default.setting(channel)
        enabled = data.draw(st.one_of(st.none(), st.booleans())) if mine.enabled is not None else theirs.enabled
        floor = data.draw(maybe_priority_st) if mine.min_priority is not None else theirs.min_priority
        changes[channel.value] = ChannelPreference(enabled=enabled, min_priority=floor)
    if agent.min_priority is not None:
        changes["min_priority"] = data.draw(maybe_priority_st)
    return p.model_copy(update={"default": default.model_copy(update=changes)})


@given(p=preferences_st, n=notifications_st, now=instants_st, data=st.data())
def test_the_agent_override_always_wins_over_the_default(
    p: Preferences, n: AgentNotification, now: datetime, data: st.DataObject
) -> None:
    routed = route(n, p, now)
    assert route(n, _with_default_replaced_where_the_agent_decides(p, n.agent_id, data), now) == routed
    agent = p.agents.get(n.agent_id)
    for channel in ChannelName:
        mine = agent.setting(channel) if agent is not None else ChannelPreference()
        if mine.enabled is False:
            assert routed.enabled[channel] is False
        fully_set = mine.min_priority is not None and agent is not None and agent.min_priority is not None
        if mine.enabled is True and fully_set:
            assert agent is not None and mine.min_priority is not None and agent.min_priority is not None
            passes = n.priority.rank >= max(mine.min_priority.rank, agent.min_priority.rank)
            sms_gate = channel is not SMS or n.priority in (HIGH, CRITICAL)
            assert routed.enabled[channel] is (passes and sms_gate)


@given(p=preferences_st, n=notifications_st, now=instants_st)
@example(  # a 23 h 59 min window on the night New York falls back: 24 h 59 min of real time
    p=prefs(time_zone="America/New_York", quiet_hours={"window": "22:00-21:59"}),
    n=notification(HIGH),
    now=datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
)
def test_a_hold_ends_in_the_future_within_a_day_and_only_inside_quiet_hours(
    p: Preferences, n: AgentNotification, now: datetime
) -> None:
    routed = route(n, p, now)
    if routed.hold_until is None:
        return
    assert routed.hold_until.tzinfo is UTC
    assert now < routed.hold_until <= now + timedelta(hours=24)
    assert p.quiet_hours is not None and p.quiet_hours.action is QuietHoursAction.hold
    assert quiet_hours_end(p, now) is not None
    assert routed.digest is False


@given(p=preferences_st, n=notifications_st, now=instants_st)
def test_route_is_deterministic(p: Preferences, n: AgentNotification, now: datetime) -> None:
    first = route(n, p, now)
    assert route(n, p, now) == first
    assert route(n, Preferences.model_validate(p.model_dump(mode="json")), now) == first
    assert route(n, p, now.astimezone(BERLIN)) == first


@given(p=preferences_st, n=notifications_st, now=instants_st)
def test_enabled_respects_every_minimum_and_keeping_needs_a_carrier(
    p: Preferences, n: AgentNotification, now: datetime
) -> None:
    routed = route(n, p, now)
    floors, user_floor = merge_min_priorities(p, n.agent_id), merge_user_min_priority(p, n.agent_id)
    for channel in on(routed):
        assert n.priority.rank >= max(floors[channel].rank, user_floor.rank)
    if n.priority.rank < user_floor.rank:
        assert on(routed) == set()
    if routed.digest or routed.hold_until is not None:
        assert plan_channels(n, routed.enabled), "only what some requested channel would carry is kept for later"
    if routed.digest and not digest_collects(p, n.priority):
        assert p.quiet_hours is not None and p.quiet_hours.action is QuietHoursAction.digest
        assert quiet_hours_end(p, now) is not None
