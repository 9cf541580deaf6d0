"""The per-process rule cache against a real SQLite store: when it asks the store, and what it reloads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from herald.adapters.store import RuleRepository, Store
from herald.adapters.store.db import Database
from herald.domain.rules import RuleBook
from herald.models import TriggerRule
from herald.services.rule_cache import RuleCache


class CountingRules(RuleRepository):
    """The real rules repository, counting the two reads the cache makes (and able to act in the middle of a
    reload)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.version_reads = 0
        self.list_reads = 0
        self.after_list: Callable[[], Awaitable[None]] | None = None

    async def rules_version(self) -> int:
        self.version_reads += 1
        return await super().rules_version()

    async def list_rules(self) -> list[TriggerRule]:
        self.list_reads += 1
        rules = await super().list_rules()
        if self.after_list is not None:
            hook, self.after_list = self.after_list, None
            await hook()
        return rules


class CountingStore(Store):
    """The real store on the same database, its rules repository counting."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.engine)
        self.rules: CountingRules = CountingRules(self.db)


def rule(name: str, condition: str = "x > 1", **fields: object) -> TriggerRule:
    return TriggerRule.model_validate({"name": name, "condition": condition, "user_ids": ["u1"], **fields})


def names(book: RuleBook) -> list[str]:
    return [compiled.rule.name for compiled in book.rules]


async def test_loads_on_first_use(store: Store) -> None:
    await store.rules.put_rule(rule("high-errors", "error_rate > 0.05"))
    counting = CountingStore(store)
    cache = RuleCache(counting)
    assert (counting.rules.version_reads, counting.rules.list_reads) == (0, 0)
    book = await cache.book()
    assert names(book) == ["high-errors"]
    assert [c.rule.name for c in book.matching("checkout", {"error_rate": 0.07})] == ["high-errors"]
    assert (counting.rules.version_reads, counting.rules.list_reads) == (1, 1)


async def test_no_store_reads_within_refresh_seconds(store: Store) -> None:
    await store.rules.put_rule(rule("a"))
    counting = CountingStore(store)
    cache = RuleCache(counting, refresh_seconds=3600)
    first = await cache.book()
    for _ in range(100):
        assert await cache.book() is first
    assert (counting.rules.version_reads, counting.rules.list_reads) == (1, 1)


async def test_a_change_here_shows_after_invalidate(store: Store) -> None:
    counting = CountingStore(store)
    cache = RuleCache(counting, refresh_seconds=3600)
    assert names(await cache.book()) == []
    await store.rules.put_rule(rule("new"))
    assert names(await cache.book()) == []  # not checked yet: the refresh interval has not passed
    cache.invalidate()
    assert names(await cache.book()) == ["new"]
    assert (counting.rules.version_reads, counting.rules.list_reads) == (2, 2)


async def test_an_unchanged_version_means_no_reload(store: Store) -> None:
    await store.rules.put_rule(rule("a"))
    counting = CountingStore(store)
    cache = RuleCache(counting, refresh_seconds=3600)
    first = await cache.book()
    cache.invalidate()
    assert await cache.book() is first
    assert (counting.rules.version_reads, counting.rules.list_reads) == (2, 1)


async def test_a_change_by_another_process_shows_after_refresh_seconds(store: Store, tmp_path: Path) -> None:
    cache = RuleCache(store, refresh_seconds=0.05)
    assert names(await cache.book()) == []
    other = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'herald.db'}")  # another process's connection
    try:
        await other.rules.put_rule(rule("theirs", agent_id="billing"))
    finally:
        await other.close()
    await asyncio.sleep(0.1)
    book = await cache.book()
    assert names(book) == ["theirs"]
    assert book.matching("billing", {"x": 2}) == list(book.rules) and book.matching("checkout", {"x": 2}) == []


async def test_concurrent_callers_share_one_reload(store: Store) -> None:
    await store.rules.put_rule(rule("a"))
    counting = CountingStore(store)
    cache = RuleCache(counting, refresh_seconds=3600)
    books = await asyncio.gather(*(cache.book() for _ in range(20)))
    assert all(book is books[0] for book in books)
    assert (counting.rules.version_reads, counting.rules.list_reads) == (1, 1)


async def test_an_invalidate_during_a_reload_is_not_lost(store: Store) -> None:
    counting = CountingStore(store)
    cache = RuleCache(counting, refresh_seconds=3600)

    async def change_rules() -> None:  # lands after the reload read the list, before it finished
        await store.rules.put_rule(rule("late"))
        cache.invalidate()

    counting.rules.after_list = change_rules
    assert names(await cache.book()) == []
    assert names(await cache.book()) == ["late"]


async def test_a_stored_rule_that_does_not_compile_is_skipped(store: Store) -> None:
    await store.rules.put_rule(rule("broken", "error_rate >"))
    await store.rules.put_rule(rule("fine"))
    await store.rules.put_rule(rule("off", "x >", enabled=False))
    book = await RuleCache(store).book()
    assert names(book) == ["fine"]
    assert [(problem.rule, problem.field) for problem in book.skipped] == [("broken", "condition")]


async def test_a_reload_keeps_unchanged_rules_compiled(store: Store) -> None:
    await store.rules.put_rule(rule("kept"))
    cache = RuleCache(store, refresh_seconds=3600)
    kept = (await cache.book()).rules[0]
    await store.rules.put_rule(rule("added"))
    cache.invalidate()
    book = await cache.book()
    assert names(book) == ["added", "kept"] and book.rules[1] is kept
