"""The store: SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (several workers), one repository per
aggregate on one engine.

`Store.open(url)` is what the rest of Herald opens; what it holds is reached through its repositories:

- `store.notifications`  dedup claims, the delivery log, kept content, outcomes, digests, ops alerts
- `store.users`          preferences, contacts and the refusals marked on them, inbox marks, push subscriptions
- `store.rules`          trigger rules and their version
- `store.tokens`         bearer tokens (by hash)
- `store.retention`      purging history older than the retention period
- `store.answers`        used answer links, SMS questions, refused answers, snoozes
- `store.silences`       silences: what they match, when they are in force
- `store.subscriptions`  subscriptions to events: where to POST which, and their delivery state
- `store.groups`         groups (teams): a name for a list of users, which a notification may address
- `store.throttle`       throttle counters per user, agent and hour, and each notification's claim
- `store.oncall`         escalation policies and on-call schedules

Each repository is its own module here; what they share (the engine behind `read`/`write`, timestamps, row
conversions) is `db.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.adapters.store import migrate
from herald.adapters.store.answers import AnswerRepository
from herald.adapters.store.db import Database, T, Work, sqlite_pragmas
from herald.adapters.store.groups import GroupRepository
from herald.adapters.store.notifications import NotificationRepository
from herald.adapters.store.oncall import OnCallRepository
from herald.adapters.store.retention import RetentionRepository
from herald.adapters.store.rules import RuleRepository
from herald.adapters.store.silences import SilenceRepository
from herald.adapters.store.subscriptions import SubscriptionRepository
from herald.adapters.store.throttle import ThrottleRepository
from herald.adapters.store.tokens import TokenRepository
from herald.adapters.store.users import UserRepository


class Store:
    """One database: its repositories, sharing one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.db = Database(engine)
        self.engine = engine
        self.notifications = NotificationRepository(self.db)
        self.users = UserRepository(self.db)
        self.rules = RuleRepository(self.db)
        self.tokens = TokenRepository(self.db)
        self.retention = RetentionRepository(self.db)
        self.answers = AnswerRepository(self.db)
        self.silences = SilenceRepository(self.db)
        self.subscriptions = SubscriptionRepository(self.db)
        self.throttle = ThrottleRepository(self.db)
        self.groups = GroupRepository(self.db)
        self.oncall = OnCallRepository(self.db)

    @classmethod
    async def open(cls, url: str, *, schema_name: str | None = None) -> Store:
        """Connect, and check the schema is at this Herald's revision (herald/adapters/store/migrate.py).

        An empty database is created at the head revision; one at an older revision, or made before migrations,
        raises `SchemaOutOfDate` ("run `herald db upgrade`"): opening never alters an existing schema.
        `schema_name` (PostgreSQL only) keeps Herald's tables in their own schema, e.g. one per test run.
        """
        store = cls._connect(url, schema_name)
        try:
            await store.write(lambda conn: migrate.check(conn, schema_name))
        except BaseException:
            await store.close()
            raise
        return store

    @classmethod
    async def upgrade(cls, url: str, *, schema_name: str | None = None) -> migrate.Upgraded:
        """Take the database at `url` to the head revision (`herald db upgrade`), in one transaction on
        PostgreSQL; say what it was at and what it is at now."""
        store = cls._connect(url, schema_name)
        try:
            return await store.write(lambda conn: migrate.upgrade(conn, schema_name))
        finally:
            await store.close()

    @classmethod
    def _connect(cls, url: str, schema_name: str | None) -> Store:
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        elif schema_name:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema_name}}
        engine = create_async_engine(url, **kwargs)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return cls(engine)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.read(lambda conn: conn.scalar(sa.text("SELECT 1")))

    async def read(self, work: Work[T]) -> T:
        """Run `work(conn)` on a connection and return what it returns (rows must be fetched inside)."""
        return await self.db.read(work)

    async def write(self, work: Work[T]) -> T:
        """Run `work(conn)` in one transaction, committed when it returns and rolled back when it raises."""
        return await self.db.write(work)
