"""merge_preferences: load the user's preferences and route one notification by them (routing.route_for)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import activity

from herald.adapters.store import Store
from herald.domain import throttle
from herald.domain.answers import snooze_scopes
from herald.domain.routing import CONTACT_CHANNELS, merge_preferences, route_for
from herald.domain.schedule import digest_cadence
from herald.models import ChannelName, DigestCadence, EnabledChannels, PreferenceQuery, Priority, utcnow


class PreferenceActivities:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime] = utcnow,
        throttle_window_seconds: float = throttle.HOUR_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock  # quiet hours are read at the moment the activity runs; tests pin that moment
        # HERALD_THROTTLE_WINDOW_SECONDS: the throttle's window, the clock hour unless tests shorten it.
        self._throttle_window = throttle_window_seconds

    @activity.defn(name="merge_preferences")
    async def merge_preferences(self, query: PreferenceQuery) -> EnabledChannels:
        """The channels, hold and digest for the notification described by `query`, as of now.

        A query without a priority comes from a history recorded before minimum priorities, quiet hours and
        digests: it gets the merged switches alone, exactly as it did then.
        """
        if query.priority is None:
            preferences = await self._store.users.get_preferences(query.user_id)
            # Those histories knew none of the contact channels: leave them out, as they were.
            merged = merge_preferences(preferences, query.agent_id)
            return EnabledChannels(enabled={c: on for c, on in merged.items() if c not in CONTACT_CHANNELS})
        channels = query.channels if query.channels is not None else list(ChannelName)
        now = self._clock()
        # Critical gets through a snooze, as through quiet hours: no snooze to look up.
        scopes = snooze_scopes(query.rule, query.agent_id) if query.priority is not Priority.critical else None
        preferences, until, contact = await self._store.answers.routing_inputs(query.user_id, scopes, now)
        if until is not None:
            return EnabledChannels(enabled=dict.fromkeys(channels, False), snoozed_until=until)
        # Slack and Telegram only for a user who saved (or bound) an address there.
        routed = route_for(query.agent_id, query.priority, channels, preferences, now, contact)
        limits = throttle.merge_limits(preferences, query.agent_id)
        if query.notification_id is None or not limits.any:
            return routed
        if not throttle.applies(routed, query.priority, query.asks, channels):
            return routed
        # Over max_per_hour: decided here, so the decision is this activity's recorded result. The claim is one
        # transaction that locks the window's counters: concurrent notifications never both take the last slot.
        start, end = throttle.window(now, self._throttle_window)
        decision = await self._store.throttle.claim(
            query.notification_id, query.user_id, query.agent_id, start, limits, throttle.planned(routed, channels)
        )
        return throttle.apply(routed, decision, end, digest_on=digest_cadence(preferences) is not DigestCadence.off)
