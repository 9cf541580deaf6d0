"""Pure channel planning: preferences, the SMS gate, fallback, escalation and the final status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.errors import ContactMissing, RecipientNotConnected, TransientDeliveryError
from herald.domain.routing import (
    channel_allowed,
    escalation_channels,
    fallback_channel,
    final_status,
    joined_channel,
    merge_preferences,
    plan_channels,
    route,
)
from herald.models import (
    DEFAULT_FALLBACK_ORDER,
    AgentNotification,
    ChannelName,
    ChannelSwitches,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
)

PUSH, EMAIL, SMS, WEBHOOK = ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook
CHAT = ChannelName.chat
SLACK, TELEGRAM = ChannelName.slack, ChannelName.telegram
CHATS = {CHAT: True, SLACK: True, TELEGRAM: True}
LOW, MEDIUM, HIGH, CRITICAL = Priority.low, Priority.medium, Priority.high, Priority.critical
ALL_ON = dict.fromkeys(ChannelName, True)
NOT_CONNECTED = RecipientNotConnected.type_name

SEED = Preferences.model_validate(
    {"default": {"push": True, "email": True, "sms": False}, "agents": {"batch-agent": {"email": False}}}
)


def notification(channels: list[ChannelName], priority: Priority = MEDIUM, agent_id: str = "batch-agent") -> Any:
    return AgentNotification(agent_id=agent_id, user_id="alice", title="t", channels=channels, priority=priority)


def enabled_with(**switches: bool) -> dict[ChannelName, bool]:
    return {**ALL_ON, **{ChannelName(k): v for k, v in switches.items()}}


# --- merge_preferences ---------------------------------------------------------------------------


def test_seed_preferences_for_the_overridden_agent() -> None:
    assert merge_preferences(SEED, "batch-agent") == {PUSH: True, EMAIL: False, SMS: False, WEBHOOK: True, **CHATS}


def test_seed_preferences_for_any_other_agent_use_the_default() -> None:
    assert merge_preferences(SEED, "other-agent") == {PUSH: True, EMAIL: True, SMS: False, WEBHOOK: True, **CHATS}


def test_empty_preferences_enable_every_channel() -> None:
    assert merge_preferences(Preferences(), "any-agent") == ALL_ON


def test_agent_entry_can_turn_on_what_the_default_turns_off() -> None:
    prefs = Preferences.model_validate({"default": {"sms": False}, "agents": {"pager-agent": {"sms": True}}})
    assert merge_preferences(prefs, "pager-agent")[SMS] is True
    assert merge_preferences(prefs, "batch-agent")[SMS] is False


def test_agent_entry_only_overrides_the_channels_it_sets() -> None:
    prefs = Preferences.model_validate({"default": {"push": False, "email": False}, "agents": {"a": {"push": True}}})
    assert merge_preferences(prefs, "a") == {PUSH: True, EMAIL: False, SMS: True, WEBHOOK: True, **CHATS}


def test_merge_returns_every_channel() -> None:
    assert set(merge_preferences(SEED, "batch-agent")) == set(ChannelName)


# --- channel_allowed -----------------------------------------------------------------------------


@pytest.mark.parametrize("priority", list(Priority))
@pytest.mark.parametrize("channel", [PUSH, EMAIL, WEBHOOK])
def test_non_sms_channels_follow_the_switch_at_any_priority(channel: ChannelName, priority: Priority) -> None:
    assert channel_allowed(channel, priority, ALL_ON) is True
    assert channel_allowed(channel, priority, {**ALL_ON, channel: False}) is False


@pytest.mark.parametrize(("priority", "allowed"), [(LOW, False), (MEDIUM, False), (HIGH, True), (CRITICAL, True)])
def test_sms_needs_high_priority(priority: Priority, allowed: bool) -> None:
    assert channel_allowed(SMS, priority, ALL_ON) is allowed


@pytest.mark.parametrize("priority", list(Priority))
def test_disabled_sms_is_never_allowed(priority: Priority) -> None:
    assert channel_allowed(SMS, priority, enabled_with(sms=False)) is False


def test_channel_missing_from_the_switches_is_allowed() -> None:
    assert channel_allowed(WEBHOOK, LOW, {PUSH: False}) is True


# --- plan_channels -------------------------------------------------------------------------------


def test_plan_keeps_the_agents_order() -> None:
    n = notification([WEBHOOK, EMAIL, PUSH])
    assert plan_channels(n, ALL_ON) == [WEBHOOK, EMAIL, PUSH]


def test_plan_drops_disabled_channels() -> None:
    n = notification([PUSH, EMAIL])
    assert plan_channels(n, merge_preferences(SEED, "batch-agent")) == [PUSH]


def test_plan_never_adds_channels_the_agent_did_not_ask_for() -> None:
    assert plan_channels(notification([EMAIL]), ALL_ON) == [EMAIL]


def test_plan_drops_sms_for_medium_priority_and_keeps_it_for_high() -> None:
    assert plan_channels(notification([SMS, PUSH], MEDIUM), ALL_ON) == [PUSH]
    assert plan_channels(notification([SMS, PUSH], HIGH), ALL_ON) == [SMS, PUSH]


def test_plan_is_empty_when_nothing_is_allowed() -> None:
    assert plan_channels(notification([EMAIL, SMS]), enabled_with(email=False)) == []


# --- fallback_channel ----------------------------------------------------------------------------


def test_fallback_takes_the_next_unused_channel_in_order() -> None:
    assert fallback_channel(TransientDeliveryError.type_name, DEFAULT_FALLBACK_ORDER, ALL_ON, HIGH, [PUSH]) == EMAIL
    assert fallback_channel(None, DEFAULT_FALLBACK_ORDER, ALL_ON, HIGH, [PUSH, EMAIL]) == SMS


def test_fallback_skips_sms_below_high_priority() -> None:
    assert fallback_channel(None, DEFAULT_FALLBACK_ORDER, ALL_ON, MEDIUM, [PUSH, EMAIL]) == WEBHOOK


def test_fallback_skips_disabled_channels() -> None:
    enabled = enabled_with(email=False)
    assert fallback_channel(ContactMissing.type_name, DEFAULT_FALLBACK_ORDER, enabled, HIGH, [PUSH]) == SMS


def test_fallback_is_none_when_everything_is_used_or_off() -> None:
    assert fallback_channel(None, DEFAULT_FALLBACK_ORDER, ALL_ON, HIGH, list(ChannelName)) is None
    assert fallback_channel(None, DEFAULT_FALLBACK_ORDER, enabled_with(webhook=False), LOW, [PUSH, EMAIL]) is None


def test_fallback_only_considers_the_given_order() -> None:
    assert fallback_channel(None, [PUSH, WEBHOOK], ALL_ON, HIGH, [PUSH]) == WEBHOOK
    assert fallback_channel(None, [PUSH], ALL_ON, HIGH, [PUSH]) is None


def test_recipient_not_connected_goes_to_email_first() -> None:
    order = [PUSH, WEBHOOK, SMS, EMAIL]
    assert fallback_channel(NOT_CONNECTED, order, ALL_ON, HIGH, [PUSH]) == EMAIL
    # any other error follows the order
    assert fallback_channel(TransientDeliveryError.type_name, order, ALL_ON, HIGH, [PUSH]) == WEBHOOK


def test_recipient_not_connected_reaches_email_even_if_the_order_leaves_it_out() -> None:
    assert fallback_channel(NOT_CONNECTED, [PUSH, WEBHOOK], ALL_ON, MEDIUM, [PUSH]) == EMAIL


def test_recipient_not_connected_follows_the_order_when_email_is_off_or_used() -> None:
    order = [PUSH, WEBHOOK, EMAIL]
    assert fallback_channel(NOT_CONNECTED, order, enabled_with(email=False), MEDIUM, [PUSH]) == WEBHOOK
    assert fallback_channel(NOT_CONNECTED, order, ALL_ON, MEDIUM, [PUSH, EMAIL]) == WEBHOOK


def test_fallback_accepts_any_iterable_of_used_channels() -> None:
    assert fallback_channel(None, DEFAULT_FALLBACK_ORDER, ALL_ON, HIGH, iter([PUSH, EMAIL])) == SMS


# --- escalation_channels -------------------------------------------------------------------------


def test_escalation_lists_every_allowed_unused_channel_order_first() -> None:
    assert escalation_channels([WEBHOOK, EMAIL], ALL_ON, CRITICAL, [PUSH]) == [
        WEBHOOK,
        EMAIL,
        SMS,
        CHAT,
        SLACK,
        TELEGRAM,
    ]


def test_escalation_skips_disabled_and_used_channels() -> None:
    assert escalation_channels(DEFAULT_FALLBACK_ORDER, enabled_with(sms=False), CRITICAL, [EMAIL]) == [
        PUSH,
        WEBHOOK,
        CHAT,
        SLACK,
        TELEGRAM,
    ]


def test_escalation_keeps_to_the_channels_a_recorded_route_names() -> None:
    """A history recorded before `chat` existed routes without it: its replay escalates where it did then."""
    recorded = {PUSH: True, EMAIL: True, SMS: True, WEBHOOK: True}
    assert escalation_channels(DEFAULT_FALLBACK_ORDER, recorded, CRITICAL, [EMAIL]) == [PUSH, SMS, WEBHOOK]


def test_escalation_is_empty_when_all_channels_are_used() -> None:
    assert escalation_channels(DEFAULT_FALLBACK_ORDER, ALL_ON, CRITICAL, set(ChannelName)) == []


def test_escalation_skips_sms_below_high() -> None:
    assert SMS not in escalation_channels(DEFAULT_FALLBACK_ORDER, ALL_ON, MEDIUM, [])
    assert SMS in escalation_channels(DEFAULT_FALLBACK_ORDER, ALL_ON, HIGH, [])


def test_escalation_has_no_repeats_when_the_order_repeats() -> None:
    assert escalation_channels([EMAIL, EMAIL, PUSH], ALL_ON, CRITICAL, []) == [
        EMAIL,
        PUSH,
        SMS,
        WEBHOOK,
        CHAT,
        SLACK,
        TELEGRAM,
    ]


# --- final_status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "confirmations", "status"),
    [
        (2, 2, NotificationStatus.confirmed),
        (3, 2, NotificationStatus.confirmed),
        (1, 2, NotificationStatus.unconfirmed),
        (0, 2, NotificationStatus.unconfirmed),
        (1, 1, NotificationStatus.confirmed),
    ],
)
def test_critical_counts_confirmed_channels(delivered: int, confirmations: int, status: NotificationStatus) -> None:
    assert final_status(CRITICAL, [True, True], delivered, confirmations) is status


def test_critical_ignores_planned_channels() -> None:
    assert final_status(CRITICAL, [False, False], 2, 2) is NotificationStatus.confirmed
    assert final_status(CRITICAL, [True, True], 1, 2) is NotificationStatus.unconfirmed


@pytest.mark.parametrize("priority", [LOW, MEDIUM, HIGH])
@pytest.mark.parametrize(
    ("fulfilled", "status"),
    [
        ([True], NotificationStatus.delivered),
        ([True, True], NotificationStatus.delivered),
        ([True, False], NotificationStatus.partially_delivered),
        ([False, True], NotificationStatus.partially_delivered),
        ([False], NotificationStatus.failed),
        ([False, False], NotificationStatus.failed),
        ([], NotificationStatus.failed),
    ],
)
def test_non_critical_counts_fulfilled_planned_channels(
    priority: Priority, fulfilled: list[bool], status: NotificationStatus
) -> None:
    assert final_status(priority, fulfilled, sum(fulfilled), 2) is status


# --- properties ----------------------------------------------------------------------------------

channels_st = st.sampled_from(list(ChannelName))
priorities_st = st.sampled_from(list(Priority))
enabled_st = st.fixed_dictionaries({c: st.booleans() for c in ChannelName})
order_st = st.lists(channels_st, max_size=6)
used_st = st.sets(channels_st)
error_type_st = st.sampled_from(
    [None, NOT_CONNECTED, ContactMissing.type_name, TransientDeliveryError.type_name, "Other"]
)
switch_st = st.one_of(st.none(), st.booleans())
switches_st = st.builds(ChannelSwitches, push=switch_st, email=switch_st, sms=switch_st, webhook=switch_st)
agent_ids_st = st.sampled_from(["a", "b", "batch-agent"])
preferences_st = st.builds(Preferences, default=switches_st, agents=st.dictionaries(agent_ids_st, switches_st))
requested_st = st.lists(channels_st, min_size=1, max_size=6)


def _allowed_set(enabled: dict[ChannelName, bool], priority: Priority) -> set[ChannelName]:
    return {c for c in ChannelName if enabled[c] and (c is not SMS or priority in (HIGH, CRITICAL))}


@given(
    requested=requested_st, priority=priorities_st, enabled=enabled_st, used=used_st, order=order_st, err=error_type_st
)
def test_disabled_channel_is_never_planned_nor_a_fallback_nor_an_escalation(
    requested: list[ChannelName],
    priority: Priority,
    enabled: dict[ChannelName, bool],
    used: set[ChannelName],
    order: list[ChannelName],
    err: str | None,
) -> None:
    disabled = {c for c, on in enabled.items() if not on}
    plan = plan_channels(notification(requested, priority), enabled)
    fallback = fallback_channel(err, order, enabled, priority, used)
    escalation = escalation_channels(order, enabled, priority, used)
    assert disabled.isdisjoint(plan)
    assert fallback not in disabled
    assert disabled.isdisjoint(escalation)


@given(
    requested=requested_st,
    priority=st.sampled_from([LOW, MEDIUM]),
    enabled=enabled_st,
    used=used_st,
    order=order_st,
    err=error_type_st,
)
def test_sms_is_never_used_below_high_priority(
    requested: list[ChannelName],
    priority: Priority,
    enabled: dict[ChannelName, bool],
    used: set[ChannelName],
    order: list[ChannelName],
    err: str | None,
) -> None:
    assert SMS not in plan_channels(notification(requested, priority), enabled)
    assert fallback_channel(err, order, enabled, priority, used) is not SMS
    assert SMS not in escalation_channels(order, enabled, priority, used)


@given(requested=requested_st, priority=priorities_st, enabled=enabled_st)
def test_plan_is_the_allowed_requested_channels_in_order(
    requested: list[ChannelName], priority: Priority, enabled: dict[ChannelName, bool]
) -> None:
    n = notification(requested, priority)
    allowed = _allowed_set(enabled, priority)
    assert plan_channels(n, enabled) == [c for c in dict.fromkeys(requested) if c in allowed]


@given(prefs=preferences_st, agent_id=agent_ids_st, channel=channels_st)
def test_agent_override_wins_over_the_default(prefs: Preferences, agent_id: str, channel: ChannelName) -> None:
    merged = merge_preferences(prefs, agent_id)
    agent = prefs.agents.get(agent_id)
    override = agent.get(channel) if agent is not None else None
    default = prefs.default.get(channel)
    if override is not None:
        assert merged[channel] is override
    elif default is not None:
        assert merged[channel] is default
    else:
        assert merged[channel] is True


@given(prefs=preferences_st, agent_id=agent_ids_st, channel=channels_st)
def test_channel_unset_everywhere_is_enabled(prefs: Preferences, agent_id: str, channel: ChannelName) -> None:
    prefs.default = prefs.default.model_copy(update={channel.value: None})
    prefs.agents = {a: s.model_copy(update={channel.value: None}) for a, s in prefs.agents.items()}
    assert merge_preferences(prefs, agent_id)[channel] is True


@given(prefs=preferences_st, channel=channels_st)
def test_other_agents_overrides_do_not_leak(prefs: Preferences, channel: ChannelName) -> None:
    unlisted = "agent-without-entry"
    default = prefs.default.get(channel)
    assert merge_preferences(prefs, unlisted)[channel] is (True if default is None else default)


@given(err=error_type_st, order=order_st, enabled=enabled_st, priority=priorities_st, used=used_st)
def test_fallback_never_returns_a_used_channel(
    err: str | None,
    order: list[ChannelName],
    enabled: dict[ChannelName, bool],
    priority: Priority,
    used: set[ChannelName],
) -> None:
    choice = fallback_channel(err, order, enabled, priority, used)
    assert choice is None or choice not in used
    # and it returns None only when nothing in the order (plus email, for not-connected) is left
    candidates = [*order, *([EMAIL] if err == NOT_CONNECTED else [])]
    left = [c for c in candidates if c not in used and c in _allowed_set(enabled, priority)]
    assert (choice is None) == (not left)


@given(order=order_st, enabled=enabled_st, priority=priorities_st, used=used_st)
def test_recipient_not_connected_falls_to_email_when_email_is_allowed_and_unused(
    order: list[ChannelName], enabled: dict[ChannelName, bool], priority: Priority, used: set[ChannelName]
) -> None:
    choice = fallback_channel(NOT_CONNECTED, order, enabled, priority, used)
    if enabled[EMAIL] and EMAIL not in used:
        assert choice is EMAIL
    else:
        assert choice is not EMAIL


@given(order=order_st, enabled=enabled_st, priority=priorities_st, used=used_st)
def test_escalation_is_every_allowed_unused_channel_once(
    order: list[ChannelName], enabled: dict[ChannelName, bool], priority: Priority, used: set[ChannelName]
) -> None:
    escalation = escalation_channels(order, enabled, priority, used)
    assert len(escalation) == len(set(escalation))
    assert set(escalation) == _allowed_set(enabled, priority) - used
    # channels named in the order come first, in that order
    in_order = [c for c in dict.fromkeys(order) if c in escalation]
    assert escalation[: len(in_order)] == in_order


@given(fulfilled=st.lists(st.booleans(), max_size=5), priority=st.sampled_from([LOW, MEDIUM, HIGH]))
def test_final_status_of_non_critical_is_never_a_critical_status(fulfilled: list[bool], priority: Priority) -> None:
    status = final_status(priority, fulfilled, sum(fulfilled), 2)
    assert status in {NotificationStatus.delivered, NotificationStatus.partially_delivered, NotificationStatus.failed}
    assert (status is NotificationStatus.delivered) == (bool(fulfilled) and all(fulfilled))


# --- joined_channel: push with nobody connected rides on an email already on its way ------------------


def test_unconnected_push_joins_an_email_already_in_use() -> None:
    used = {ChannelName.push, ChannelName.email}
    joined = joined_channel(RecipientNotConnected.type_name, ALL_ON, Priority.medium, used, [ChannelName.push])
    assert joined is ChannelName.email


def test_unconnected_push_does_not_join_when_email_is_unused_or_off() -> None:
    tried = [ChannelName.push]
    assert joined_channel(RecipientNotConnected.type_name, ALL_ON, Priority.medium, {ChannelName.push}, tried) is None
    email_off = {**ALL_ON, ChannelName.email: False}
    used = {ChannelName.push, ChannelName.email}
    assert joined_channel(RecipientNotConnected.type_name, email_off, Priority.medium, used, tried) is None


def test_unconnected_push_never_joins_an_email_its_own_chain_already_tried() -> None:
    used = {ChannelName.push, ChannelName.email}
    tried = [ChannelName.email, ChannelName.push]  # email failed first, then fell back to push
    assert joined_channel(RecipientNotConnected.type_name, ALL_ON, Priority.medium, used, tried) is None


def test_other_failures_never_join() -> None:
    used = {ChannelName.push, ChannelName.email}
    for error_type in (ContactMissing.type_name, TransientDeliveryError.type_name, None):
        assert joined_channel(error_type, ALL_ON, Priority.high, used, [ChannelName.push]) is None


# --- contact channels (Slack, Telegram) ------------------------------------------------------------


def test_a_contact_channel_is_routed_only_to_a_user_with_its_address() -> None:
    n = notification([SLACK, EMAIL], CRITICAL)
    assert route(n, Preferences(), datetime(2026, 6, 1, 12, tzinfo=UTC)).enabled[SLACK] is False
    with_slack = Contact(slack_user_id="U024BE7LH")
    routed = route(n, Preferences(), datetime(2026, 6, 1, 12, tzinfo=UTC), with_slack)
    assert routed.enabled[SLACK] is True and routed.enabled[TELEGRAM] is False
    assert plan_channels(n, routed.enabled) == [SLACK, EMAIL]


def test_a_routing_map_recorded_before_the_chat_channels_leaves_them_off() -> None:
    # What an older history's preference activity returned: the four channels it knew.
    recorded = {PUSH: True, EMAIL: True, SMS: True, WEBHOOK: True}
    assert escalation_channels(DEFAULT_FALLBACK_ORDER, recorded, CRITICAL, [PUSH]) == [EMAIL, SMS, WEBHOOK]
    assert fallback_channel(None, [*DEFAULT_FALLBACK_ORDER, SLACK], recorded, CRITICAL, list(recorded)) is None
    assert not channel_allowed(TELEGRAM, CRITICAL, recorded)
