"""What every repository of the store shares: the one engine behind `read` and `write`, and the row helpers.

Every repository method is one unit of work, `work(conn)`, handed to `Database.read` or `Database.write`:
- PostgreSQL runs it on the async engine (asyncpg), through SQLAlchemy's `run_sync`.
- SQLite runs it whole on a small thread pool with the plain `sqlite3` driver: one thread hop per unit of work,
  where aiosqlite took about five per statement (cursor, execute, fetch, close, rollback). That halved the store's
  share of a notification's worker CPU (bench/analysis/pipeline.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from herald.adapters.store import schema
from herald.models import ChannelName, ChannelStatus, Contact, DeliveryAttempt, Preferences, as_utc, utcnow
from herald.models.inbox import NotificationContent

T = TypeVar("T")
Work = Callable[[sa.Connection], T]
# Threads running SQLite work: two, so a writer waiting out another process's lock (busy_timeout) leaves one for
# reads; more only contend for the GIL (measured: 4 threads cost a notification's store work about 40% more CPU).
SQLITE_THREADS = 2


class Database:
    """The one engine every repository of a Store runs its work on."""

    def __init__(self, engine: AsyncEngine) -> None:
        # The async engine: PostgreSQL's work runs on it; on SQLite it serves ad-hoc queries (tests, tools).
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sqlite: sa.Engine | None = None
        self._threads: ThreadPoolExecutor | None = None
        if self.dialect == "sqlite":
            if engine.url.database in (None, "", ":memory:"):
                raise ValueError("an in-memory SQLite store is not supported: give the database a file path")
            self._sqlite = sa.create_engine(engine.url.set(drivername="sqlite"))
            sa.event.listen(self._sqlite, "connect", sqlite_pragmas)
            self._threads = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="herald-sqlite")

    async def close(self) -> None:
        if self._sqlite is not None and self._threads is not None:
            await asyncio.get_running_loop().run_in_executor(self._threads, self._sqlite.dispose)
            self._threads.shutdown(wait=False)
        await self.engine.dispose()

    async def read(self, work: Work[T]) -> T:
        """Run `work(conn)` on a connection and return what it returns (rows must be fetched inside)."""
        return await self._run(work, transaction=False)

    async def write(self, work: Work[T]) -> T:
        """Run `work(conn)` in one transaction, committed when it returns and rolled back when it raises."""
        return await self._run(work, transaction=True)

    async def _run(self, work: Work[T], *, transaction: bool) -> T:
        if self._sqlite is None or self._threads is None:
            async with self.engine.begin() if transaction else self.engine.connect() as conn:
                return await conn.run_sync(work)
        sqlite_engine = self._sqlite

        def whole() -> T:
            with sqlite_engine.begin() if transaction else sqlite_engine.connect() as conn:
                return work(conn)

        return await asyncio.get_running_loop().run_in_executor(self._threads, whole)

    def insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for this dialect."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def upsert_document(self, table: sa.Table, user_id: str, data: Any) -> Any:
        """Write one user's JSON document (preferences, contact, inbox marks) whole, replacing what was there."""
        stmt = self.insert(table).values(user_id=user_id, data=data, updated_at=utcnow())
        return stmt.on_conflict_do_update(
            index_elements=[table.c.user_id], set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
        )


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the API read while the worker writes; the busy timeout makes writers queue, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# --- timestamps ----------------------------------------------------------------------------------


# --- rows to models ------------------------------------------------------------------------------


def preferences_from(data: Any) -> Preferences:
    """A stored preferences document, or the empty default (every channel on) when none was saved."""
    return Preferences.model_validate(data) if data is not None else Preferences()


def contact_from(data: Any) -> Contact | None:
    return Contact.model_validate(data) if data is not None else None


def contact_query(user_id: str) -> sa.Select[Any]:
    t = schema.contacts
    return sa.select(t.c.data).where(t.c.user_id == user_id)


def attempt_from(row: Any) -> DeliveryAttempt:
    data = dict(row)
    data.pop("id", None)
    data["channel"] = ChannelName(data["channel"])
    data["started_at"] = as_utc(data["started_at"])
    data["finished_at"] = as_utc(data["finished_at"])
    return DeliveryAttempt.model_validate(data)


def content_from(row: Any) -> NotificationContent:
    data = dict(row)
    data.pop("stored_at", None)
    data["created_at"] = as_utc(data["created_at"])
    return NotificationContent.model_validate(data)


def delivered_query(idempotency_key: str) -> sa.Select[Any]:
    """The successful attempt logged for this (notification, channel), if any."""
    t = schema.delivery_log
    return (
        sa.select(t).where(t.c.idempotency_key == idempotency_key, t.c.result == ChannelStatus.delivered.value).limit(1)
    )
