"""check_silences: the silence in force now that holds one notification, if any (herald/domain/silences.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import activity

from herald.adapters.store import Store
from herald.models import SilenceMatch, SilenceQuery, utcnow


class SilenceActivities:
    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock  # silences are read as of the moment the activity runs; its result is what replays

    @activity.defn(name="check_silences")
    async def check_silences(self, query: SilenceQuery) -> SilenceMatch:
        silence = await self._store.silences.matching(query, self._clock())
        return SilenceMatch(silence_id=silence.silence_id if silence is not None else None)
