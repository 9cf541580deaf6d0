"""The per-process cache of compiled rules: events are matched in memory, the store is asked only now and then.

Any process may change rules (the API, `herald rules apply`); every process notices through the store's rules
version, checked at most once per `refresh_seconds`, so a change reaches every process within about that long
and the process that made it at once (`invalidate`).
"""

from __future__ import annotations

import asyncio
import time

from herald.adapters.store import Store
from herald.domain.rules import RuleBook


class RuleCache:
    """The current RuleBook of one process, reloaded when the stored rules change."""

    def __init__(self, store: Store, *, refresh_seconds: float = 1.0) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._book: RuleBook | None = None
        self._version: int | None = None
        self._checked_at = 0.0
        self._stale = True
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return (
            self._book is not None and not self._stale and time.monotonic() - self._checked_at < self._refresh_seconds
        )

    async def book(self) -> RuleBook:
        """The compiled rules; at most one version check per `refresh_seconds`, a reload only on a change."""
        if self._fresh():
            assert self._book is not None
            return self._book
        async with self._lock:  # concurrent callers wait for one check (and reload) instead of each doing one
            if self._fresh():
                assert self._book is not None
                return self._book
            # Cleared before reading, so an invalidate() during the reload is not lost.
            self._stale = False
            # The version first: a change landing between the two reads is then seen again next time.
            version = await self._store.rules.rules_version()
            if self._book is None or version != self._version:
                rules = await self._store.rules.list_rules()
                # Compiling many rules takes a while (Jinja above all): keep the event loop responsive.
                self._book = await asyncio.to_thread(RuleBook, rules, reuse=self._book)
                self._version = version
            self._checked_at = time.monotonic()
            return self._book

    def invalidate(self) -> None:
        """Make the next `book()` check the version at once: call it after changing rules in this process."""
        self._stale = True
