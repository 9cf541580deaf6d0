"""merge_preferences: load the user's preferences and merge the agent's entry over the defaults."""

from __future__ import annotations

from temporalio import activity

from herald.models import EnabledChannels, PreferenceQuery
from herald.routing import merge_preferences
from herald.store import Store


class PreferenceActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="merge_preferences")
    async def merge_preferences(self, query: PreferenceQuery) -> EnabledChannels:
        preferences = await self._store.get_preferences(query.user_id)
        return EnabledChannels(enabled=merge_preferences(preferences, query.agent_id))
