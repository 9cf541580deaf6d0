"""The per-process compiled-rule cache (interface; being implemented)."""

from __future__ import annotations

from herald.rules import RuleBook
from herald.store import Store


class RuleCache:
    def __init__(self, store: Store, *, refresh_seconds: float = 1.0) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds

    async def book(self) -> RuleBook:
        raise NotImplementedError

    def invalidate(self) -> None:
        raise NotImplementedError
