"""merge_preferences, the real activity on a real SQLite store: new queries are routed, old ones merged as before."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from temporalio.testing import ActivityEnvironment

from activities.preferences import PreferenceActivities
from herald.adapters.store import Store
from herald.models import ChannelName, EnabledChannels, PreferenceQuery, Preferences, Priority

PUSH, EMAIL, SMS, WEBHOOK = ChannelName.push, ChannelName.email, ChannelName.sms, ChannelName.webhook
# The channels that need an address in the contact (chat URLs, a Slack member id, a Telegram chat): off without.
NO_CONTACT = {ChannelName.chat: False, ChannelName.slack: False, ChannelName.telegram: False}
BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = datetime(2026, 6, 1, 23, 0, tzinfo=BERLIN)

EXAMPLE = Preferences.model_validate(
    {
        "time_zone": "Europe/Berlin",
        "default": {"email": {"min_priority": "high"}, "sms": False},
        "quiet_hours": {"window": "22:00-07:00"},
        "digest": {"cadence": "hourly"},
    }
)


async def run(activities: PreferenceActivities, query: PreferenceQuery) -> EnabledChannels:
    result: EnabledChannels = await ActivityEnvironment().run(activities.merge_preferences, query)
    return result


async def test_a_query_with_a_priority_is_routed_at_the_activitys_now(store: Store) -> None:
    await store.users.put_preferences("ada", EXAMPLE)
    activities = PreferenceActivities(store, clock=lambda: NIGHT)
    held = await run(activities, PreferenceQuery(user_id="ada", agent_id="a", priority=Priority.medium))
    assert held.hold_until == datetime(2026, 6, 2, 5, 0, tzinfo=UTC)
    assert held.enabled == {PUSH: True, EMAIL: False, SMS: False, WEBHOOK: True, **NO_CONTACT}
    low = await run(activities, PreferenceQuery(user_id="ada", agent_id="a", priority=Priority.low))
    assert low.digest is True and low.hold_until is None
    critical = await run(activities, PreferenceQuery(user_id="ada", agent_id="a", priority=Priority.critical))
    assert critical == EnabledChannels(
        enabled={PUSH: True, EMAIL: True, SMS: False, WEBHOOK: True, **NO_CONTACT}, notify_resolved=True
    )
    assert held.notify_resolved is False, "a medium one's resolve is told by email and SMS only when the user says so"


async def test_the_requested_channels_decide_whether_anything_is_kept(store: Store) -> None:
    await store.users.put_preferences("ada", EXAMPLE)
    activities = PreferenceActivities(store, clock=lambda: NIGHT)
    query = PreferenceQuery(user_id="ada", agent_id="a", priority=Priority.medium, channels=[EMAIL])
    routed = await run(activities, query)
    assert routed.hold_until is None and routed.digest is False, "email does not carry medium: nothing to wait for"


async def test_a_recorded_query_without_priority_gets_the_merged_switches_only(store: Store) -> None:
    await store.users.put_preferences("ada", EXAMPLE)
    activities = PreferenceActivities(store, clock=lambda: NIGHT)
    old = PreferenceQuery.model_validate({"user_id": "ada", "agent_id": "a"})
    assert await run(activities, old) == EnabledChannels(enabled={PUSH: True, EMAIL: True, SMS: False, WEBHOOK: True})


async def test_a_user_without_preferences_gets_every_channel_now(store: Store) -> None:
    activities = PreferenceActivities(store)
    routed = await run(activities, PreferenceQuery(user_id="nobody", agent_id="a", priority=Priority.low))
    assert routed == EnabledChannels(enabled={PUSH: True, EMAIL: True, SMS: False, WEBHOOK: True, **NO_CONTACT})
