"""merge_preferences: load the user's preferences and route one notification by them (routing.route_for)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import activity

from herald.adapters.store import Store
from herald.domain.answers import snooze_scopes
from herald.domain.routing import CONTACT_CHANNELS, merge_preferences, route_for
from herald.models import ChannelName, EnabledChannels, PreferenceQuery, Priority, utcnow


class PreferenceActivities:
    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock  # quiet hours are read at the moment the activity runs; tests pin that moment

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
        return route_for(query.agent_id, query.priority, channels, preferences, now, contact)
