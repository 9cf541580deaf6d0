"""Fixtures of the fault tests: the counting providers, and a store the worker children share with the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from herald.adapters.store import Store
from tests.fakes.http import start_fake
from tests.faults.ledger import Ledger
from tests.faults.scenario import seed_contacts


@pytest.fixture
async def ledger() -> AsyncIterator[Ledger]:
    ledger = Ledger()
    server, task, ledger.port = await start_fake(ledger)
    try:
        yield ledger
        assert ledger.malformed == [], "SendGrid's spec refuses these requests (answered 400, as SendGrid would)"
    finally:
        ledger.release.set()
        server.should_exit = True
        await task


@pytest.fixture
async def sqlite_url(tmp_path: Path, ledger: Ledger) -> str:
    """A SQLite store file with every test user's contact in it, for worker children to open."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'home' / 'herald.db'}"
    await Store.upgrade(url)  # as `herald db upgrade` would, before the workers start
    store = await Store.open(url)
    try:
        await seed_contacts(store, ledger)
    finally:
        await store.close()
    return url
