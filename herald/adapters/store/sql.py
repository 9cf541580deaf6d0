"""The store: SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (several workers), behind async methods.

Every method is one unit of work, `work(conn)`, handed to `Store.read` or `Store.write`:
- PostgreSQL runs it on the async engine (asyncpg), through SQLAlchemy's `run_sync`.
- SQLite runs it whole on a small thread pool with the plain `sqlite3` driver: one thread hop per unit of work,
  where aiosqlite took about five per statement (cursor, execute, fetch, close, rollback). That halved the store's
  share of a notification's worker CPU (bench/analysis/pipeline.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from herald.adapters.store import migrate, schema
from herald.domain.bounds import (
    ERROR_TYPE_CHARS,
    MAX_ERROR_CHARS,
    MAX_PROVIDER_ID_CHARS,
    PROVIDER_ERROR_CODE_CHARS,
    PROVIDER_STATUS_CHARS,
    bound_text,
)
from herald.models import (
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryAttempt,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
    PushSubscription,
    TriggerRule,
    as_utc,
    utcnow,
)
from herald.models.inbox import InboxReadState, NotificationContent

T = TypeVar("T")
Work = Callable[[sa.Connection], T]
# Threads running SQLite work: two, so a writer waiting out another process's lock (busy_timeout) leaves one for
# reads; more only contend for the GIL (measured: 4 threads cost a notification's store work about 40% more CPU).
SQLITE_THREADS = 2


@dataclass(frozen=True)
class RulesDiff:
    """What `replace_rules` did, by rule name."""

    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


@dataclass(frozen=True)
class RecordedOutcome:
    """A notification's final outcome and when it was recorded: one row of the audit list."""

    outcome: NotificationOutcome
    completed_at: datetime
    # What it said, when its content was kept (from its first delivery attempt); None when no channel was tried.
    content: NotificationContent | None = None


# What the retention cleanup deletes, by table: the key it deletes by, and the timestamp that ages the row.
_AGED_TABLES: dict[str, tuple[sa.Table, sa.Column[Any], sa.Column[Any]]] = {
    "delivery_log": (schema.delivery_log, schema.delivery_log.c.id, schema.delivery_log.c.finished_at),
    "notifications": (
        schema.notifications,
        schema.notifications.c.notification_id,
        schema.notifications.c.completed_at,
    ),
    "digested": (schema.digested, schema.digested.c.notification_id, schema.digested.c.created_at),
    "notification_content": (
        schema.notification_content,
        schema.notification_content.c.notification_id,
        schema.notification_content.c.stored_at,
    ),
    "provider_receipts": (
        schema.provider_receipts,
        schema.provider_receipts.c.provider_message_id,
        schema.provider_receipts.c.updated_at,
    ),
    "ops_alerts": (schema.ops_alerts, schema.ops_alerts.c.id, schema.ops_alerts.c.created_at),
}
PURGED_TABLES = (*_AGED_TABLES, "dedup_keys")


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; everything Herald stores is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Store:
    """Preferences, contacts, dedup keys, the delivery log and outcomes, behind one small async API."""

    def __init__(self, engine: AsyncEngine) -> None:
        # The async engine: PostgreSQL's work runs on it; on SQLite it serves ad-hoc queries (tests, tools).
        self.engine = engine
        self._dialect = engine.dialect.name
        self._sqlite: sa.Engine | None = None
        self._threads: ThreadPoolExecutor | None = None
        if self._dialect == "sqlite":
            if engine.url.database in (None, "", ":memory:"):
                raise ValueError("an in-memory SQLite store is not supported: give the database a file path")
            self._sqlite = sa.create_engine(engine.url.set(drivername="sqlite"))
            sa.event.listen(self._sqlite, "connect", _sqlite_pragmas)
            self._threads = ThreadPoolExecutor(SQLITE_THREADS, thread_name_prefix="herald-sqlite")

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
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    async def close(self) -> None:
        if self._sqlite is not None and self._threads is not None:
            await asyncio.get_running_loop().run_in_executor(self._threads, self._sqlite.dispose)
            self._threads.shutdown(wait=False)
        await self.engine.dispose()

    async def ping(self) -> None:
        await self.read(lambda conn: conn.scalar(sa.text("SELECT 1")))

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

    # --- preferences and contacts ----------------------------------------------------------------

    async def get_preferences(self, user_id: str) -> Preferences:
        """The user's preferences, or the empty default (every channel on) if none were saved."""
        return preferences_from(await self._get_json(schema.preferences, user_id))

    async def put_preferences(self, user_id: str, preferences: Preferences) -> None:
        await self._put_json(schema.preferences, user_id, preferences.model_dump(mode="json", exclude_none=True))

    async def update_preferences(
        self, user_id: str, change: Callable[[Preferences], Preferences]
    ) -> tuple[Preferences, Preferences]:
        """Apply `change` to the user's preferences in one transaction (the row locked on PostgreSQL, so a PUT
        at the same moment is not lost); (before, after). Nothing is written when `change` changes nothing."""
        table = schema.preferences

        def update(conn: sa.Connection) -> tuple[Preferences, Preferences]:
            query = sa.select(table.c.data).where(table.c.user_id == user_id).with_for_update()
            before = preferences_from(conn.scalar(query))
            after = change(before)
            if after != before:
                stmt = self._insert(table).values(
                    user_id=user_id, data=after.model_dump(mode="json", exclude_none=True), updated_at=utcnow()
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[table.c.user_id],
                        set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at},
                    )
                )
            return before, after

        return await self.write(update)

    async def get_contact(self, user_id: str) -> Contact | None:
        return _contact_from(await self._get_json(schema.contacts, user_id))

    async def get_inbox_state(self, user_id: str) -> InboxReadState:
        """The user's read marks; nothing read yet when none were saved."""
        data = await self._get_json(schema.inbox_state, user_id)
        return InboxReadState.model_validate(data) if data is not None else InboxReadState()

    async def put_inbox_state(self, user_id: str, state: InboxReadState) -> None:
        await self._put_json(schema.inbox_state, user_id, state.model_dump(mode="json"))

    async def put_contact(self, user_id: str, contact: Contact) -> None:
        await self._put_json(schema.contacts, user_id, contact.model_dump(mode="json", exclude_none=True))

    async def reject_contact(self, user_id: str, field: str, reason: str) -> None:
        """Mark the phone (`phone_rejected`) or webhook (`webhook_disabled`) as refused by its provider."""
        if field not in ("phone_rejected", "webhook_disabled"):
            raise ValueError(f"cannot mark contact field {field!r}; use phone_rejected or webhook_disabled")
        t = schema.contacts
        reason = bound_text(reason, MAX_ERROR_CHARS) or ""
        # One UPDATE of the one key: two refusals at once (the phone and the webhook) both stay, where reading the
        # document and writing it back whole lost whichever wrote first. No contact saved: nothing to mark.
        data: Any
        if self._dialect == "postgresql":
            merged = sa.cast(t.c.data, postgresql.JSONB).op("||")(
                sa.func.jsonb_build_object(sa.cast(sa.literal(field), sa.Text), sa.cast(sa.literal(reason), sa.Text))
            )
            data = sa.cast(merged, sa.JSON)
        else:
            data = sa.func.json_set(t.c.data, f"$.{field}", reason)
        stmt = sa.update(t).where(t.c.user_id == user_id).values(data=data, updated_at=utcnow())
        await self.write(lambda conn: conn.execute(stmt))

    # --- Web Push subscriptions ------------------------------------------------------------------

    async def add_push_subscription(self, user_id: str, subscription: PushSubscription) -> None:
        """Save a browser's subscription; the same endpoint saved again replaces the old keys and owner."""
        t = schema.push_subscriptions
        stmt = self._insert(t).values(
            endpoint=subscription.endpoint,
            user_id=user_id,
            subscription=subscription.model_dump(mode="json", exclude_none=True),
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.endpoint],
            set_={k: stmt.excluded[k] for k in ("user_id", "subscription", "created_at")},
        )
        await self.write(lambda conn: conn.execute(stmt))

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]:
        t = schema.push_subscriptions
        query = sa.select(t.c.subscription).where(t.c.user_id == user_id).order_by(t.c.created_at)
        rows = await self.read(lambda conn: conn.execute(query).scalars().all())
        return [PushSubscription.model_validate(row) for row in rows]

    async def remove_push_subscription(self, user_id: str, endpoint: str) -> bool:
        t = schema.push_subscriptions
        stmt = sa.delete(t).where(t.c.user_id == user_id, t.c.endpoint == endpoint)
        return bool(await self.write(lambda conn: conn.execute(stmt).rowcount))

    # --- trigger rules ---------------------------------------------------------------------------

    async def list_rules(self) -> list[TriggerRule]:
        t = schema.rules
        rows = await self.read(lambda conn: conn.execute(sa.select(t.c.data).order_by(t.c.name)).scalars().all())
        return [TriggerRule.model_validate(row) for row in rows]

    async def get_rule(self, name: str) -> TriggerRule | None:
        t = schema.rules
        data = await self.read(lambda conn: conn.scalar(sa.select(t.c.data).where(t.c.name == name)))
        return TriggerRule.model_validate(data) if data is not None else None

    async def put_rule(self, rule: TriggerRule) -> None:
        def put(conn: sa.Connection) -> None:
            self._upsert_rule(conn, rule)
            self._bump(conn, "rules")

        await self.write(put)

    async def delete_rule(self, name: str) -> bool:
        def delete(conn: sa.Connection) -> bool:
            deleted = bool(conn.execute(sa.delete(schema.rules).where(schema.rules.c.name == name)).rowcount)
            if deleted:
                self._bump(conn, "rules")
            return deleted

        return await self.write(delete)

    async def replace_rules(self, rules: list[TriggerRule]) -> RulesDiff:
        """Make the stored set exactly `rules`, in one transaction; say what was created, updated, deleted."""
        t = schema.rules
        wanted = {rule.name: rule for rule in rules}

        def replace(conn: sa.Connection) -> RulesDiff:
            current = {
                row.name: TriggerRule.model_validate(row.data) for row in conn.execute(sa.select(t.c.name, t.c.data))
            }
            diff = RulesDiff(
                created=sorted(set(wanted) - set(current)),
                updated=sorted(n for n in set(wanted) & set(current) if wanted[n] != current[n]),
                deleted=sorted(set(current) - set(wanted)),
                unchanged=sorted(n for n in set(wanted) & set(current) if wanted[n] == current[n]),
            )
            if diff.deleted:
                conn.execute(sa.delete(t).where(t.c.name.in_(diff.deleted)))
            for name in diff.created + diff.updated:
                self._upsert_rule(conn, wanted[name])
            if diff.changed:
                self._bump(conn, "rules")
            return diff

        return await self.write(replace)

    async def rules_version(self) -> int:
        """Bumped by every rule change: compare it to know whether compiled rules are stale."""
        query = sa.select(schema.versions.c.version).where(schema.versions.c.name == "rules")
        return int(await self.read(lambda conn: conn.scalar(query)) or 0)

    def _upsert_rule(self, conn: sa.Connection, rule: TriggerRule) -> None:
        t = schema.rules
        stmt = self._insert(t).values(name=rule.name, data=rule.model_dump(mode="json"), updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.name], set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
        )
        conn.execute(stmt)

    def _bump(self, conn: sa.Connection, name: str) -> None:
        t = schema.versions
        stmt = self._insert(t).values(name=name, version=1)
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.name], set_={"version": t.c.version + 1})
        conn.execute(stmt)

    # --- bearer tokens ---------------------------------------------------------------------------

    async def save_token(self, token_hash: str, kind: str, subject: str) -> None:
        stmt = sa.insert(schema.api_tokens).values(
            token_hash=token_hash, kind=kind, subject=subject, created_at=utcnow()
        )
        await self.write(lambda conn: conn.execute(stmt))

    async def find_token(self, token_hash: str) -> tuple[str, str] | None:
        """(kind, subject) for a token hash, or None if no such token was issued."""
        t = schema.api_tokens
        query = sa.select(t.c.kind, t.c.subject).where(t.c.token_hash == token_hash)
        row = await self.read(lambda conn: conn.execute(query).first())
        return (row.kind, row.subject) if row is not None else None

    async def _get_json(self, table: sa.Table, user_id: str) -> Any:
        return await self.read(lambda conn: conn.scalar(sa.select(table.c.data).where(table.c.user_id == user_id)))

    async def _put_json(self, table: sa.Table, user_id: str, data: Any) -> None:
        stmt = self._insert(table).values(user_id=user_id, data=data, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.user_id], set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
        )
        await self.write(lambda conn: conn.execute(stmt))

    # --- dedup -----------------------------------------------------------------------------------

    async def claim_dedup_key(
        self, key: str, notification_id: str, window_seconds: float, now: float | None = None
    ) -> str:
        """Claim `key` for `notification_id` and return the key's owner.

        The first notification to claim a key owns it until the window ends; claiming again as the owner
        (an activity retry) returns the same owner, so a retried check never calls itself a duplicate.
        """
        now = time.time() if now is None else now
        t = schema.dedup_keys
        stmt = self._insert(t).values(key=key, notification_id=notification_id, expires_at=now + window_seconds)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={"notification_id": stmt.excluded.notification_id, "expires_at": stmt.excluded.expires_at},
            where=t.c.expires_at <= now,
        )

        def claim(conn: sa.Connection) -> Any:
            conn.execute(stmt)
            return conn.scalar(sa.select(t.c.notification_id).where(t.c.key == key))

        owner = await self.write(claim)
        assert owner is not None  # the row was inserted or already there
        return str(owner)

    async def purge_dedup_keys(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        stmt = sa.delete(schema.dedup_keys).where(schema.dedup_keys.c.expires_at <= now)
        return await self.write(lambda conn: conn.execute(stmt).rowcount or 0)

    # --- delivery log ----------------------------------------------------------------------------

    async def record_attempt(self, attempt: DeliveryAttempt, content: NotificationContent | None = None) -> None:
        """Log the attempt; with `content`, keep what the notification said too (once: later attempts change nothing)."""
        row = attempt.model_dump(mode="python", exclude={"provider_status", "provider_error_code"})
        # What a provider said is bounded before it is stored: a receiver's 300-character message id must not fail
        # the write (and so the attempt) after the send succeeded.
        row["provider_message_id"] = bound_text(attempt.provider_message_id, MAX_PROVIDER_ID_CHARS)
        row["error"] = bound_text(attempt.error, MAX_ERROR_CHARS)
        row["error_type"] = bound_text(attempt.error_type, ERROR_TYPE_CHARS)
        row["started_at"], row["finished_at"] = as_utc(attempt.started_at), as_utc(attempt.finished_at)
        keep = self._keep_content(content) if content is not None else None

        def record(conn: sa.Connection) -> None:
            conn.execute(sa.insert(schema.delivery_log).values(**row))
            if keep is not None:
                conn.execute(keep)

        await self.write(record)

    async def keep_content(self, content: NotificationContent) -> None:
        """Keep what a notification said when no attempt will (it went to the digest); the first write wins."""
        stmt = self._keep_content(content)
        await self.write(lambda conn: conn.execute(stmt))

    def _keep_content(self, content: NotificationContent) -> Any:
        c = schema.notification_content
        values = content.model_dump(mode="python")
        values.update(priority=content.priority.value, created_at=as_utc(content.created_at), stored_at=utcnow())
        return self._insert(c).values(**values).on_conflict_do_nothing(index_elements=[c.c.notification_id])

    async def get_content(self, notification_id: str) -> NotificationContent | None:
        c = schema.notification_content
        query = sa.select(c).where(c.c.notification_id == notification_id)
        row = await self.read(lambda conn: conn.execute(query).mappings().first())
        return _content(row) if row is not None else None

    async def find_delivered(self, idempotency_key: str) -> DeliveryAttempt | None:
        """The successful attempt for this (notification, channel), if one was logged: never send twice."""
        row = await self.read(lambda conn: conn.execute(_delivered(idempotency_key)).mappings().first())
        return _attempt(row) if row is not None else None

    async def delivery_context(
        self, idempotency_key: str, user_id: str
    ) -> tuple[DeliveryAttempt | None, Contact | None]:
        """What a delivery attempt reads before it sends, in one round trip: `find_delivered` and `get_contact`."""
        contacts = schema.contacts

        def read(conn: sa.Connection) -> tuple[Any, Any]:
            prior = conn.execute(_delivered(idempotency_key)).mappings().first()
            return prior, conn.scalar(sa.select(contacts.c.data).where(contacts.c.user_id == user_id))

        prior, contact = await self.read(read)
        return (_attempt(prior) if prior is not None else None), _contact_from(contact)

    async def attempts(self, notification_id: str) -> list[DeliveryAttempt]:
        """Every attempt in order, with what the provider reported about it afterwards."""
        t, r = schema.delivery_log, schema.provider_receipts
        query = (
            sa.select(t, r.c.status.label("provider_status"), r.c.error_code.label("provider_error_code"))
            .select_from(t.outerjoin(r, t.c.provider_message_id == r.c.provider_message_id))
            .where(t.c.notification_id == notification_id)
            .order_by(t.c.id)
        )
        rows = await self.read(lambda conn: conn.execute(query).mappings().all())
        return [_attempt(row) for row in rows]

    async def record_provider_status(
        self, provider_message_id: str, status: str, error_code: str | None = None
    ) -> bool:
        """Record a provider's later report on a message; False when no attempt in the log sent that message."""
        t, r = schema.delivery_log, schema.provider_receipts
        # Bounded the way record_attempt bounds the id, so a long id still finds its attempt.
        provider_message_id = bound_text(provider_message_id, MAX_PROVIDER_ID_CHARS) or ""
        status = bound_text(status, PROVIDER_STATUS_CHARS) or ""
        error_code = bound_text(error_code, PROVIDER_ERROR_CODE_CHARS)
        stmt = self._insert(r).values(
            provider_message_id=provider_message_id, status=status, error_code=error_code, updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[r.c.provider_message_id],
            set_={k: stmt.excluded[k] for k in ("status", "error_code", "updated_at")},
        )

        def record(conn: sa.Connection) -> bool:
            known = conn.scalar(sa.select(t.c.id).where(t.c.provider_message_id == provider_message_id).limit(1))
            if known is None:
                return False
            conn.execute(stmt)
            return True

        return await self.write(record)

    # --- outcomes and ops alerts -----------------------------------------------------------------

    async def record_outcome(self, outcome: NotificationOutcome) -> None:
        """Write the final outcome; writing it again (an activity retry) replaces it."""
        t = schema.notifications
        values = {
            "notification_id": outcome.notification_id,
            "workflow_id": outcome.workflow_id,
            "agent_id": outcome.agent_id,
            "user_id": outcome.user_id,
            "priority": outcome.priority.value,
            "status": outcome.status.value,
            "outcome": outcome.model_dump(mode="json"),
            "completed_at": utcnow(),
        }
        stmt = self._insert(t).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.notification_id],
            set_={k: stmt.excluded[k] for k in ("status", "outcome", "completed_at")},
        )
        await self.write(lambda conn: conn.execute(stmt))

    async def get_outcome(self, notification_id: str) -> NotificationOutcome | None:
        t, d = schema.notifications, schema.digested
        query = (
            sa.select(t.c.outcome, d.c.digest_id)
            .select_from(t.outerjoin(d, t.c.notification_id == d.c.notification_id))
            .where(t.c.notification_id == notification_id)
        )
        row = await self.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        outcome = NotificationOutcome.model_validate(row.outcome)
        return outcome.model_copy(update={"digest_id": row.digest_id}) if row.digest_id else outcome

    async def list_outcomes(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        status: NotificationStatus | None = None,
        priority: Priority | None = None,
        since: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[RecordedOutcome]:
        """Recorded outcomes, newest first, matching every filter given; `since` bounds when they were recorded.

        Keyset paging: `after` is the (completed_at, notification_id) of the last row already seen, and the
        page holds the rows strictly after it in this order, so a page never shifts when new rows arrive.
        """
        t, d, c = schema.notifications, schema.digested, schema.notification_content
        query = sa.select(
            t.c.outcome,
            t.c.completed_at,
            d.c.digest_id,
            c.c.title.label("content_title"),
            c.c.body.label("content_body"),
            c.c.created_at.label("content_created_at"),
        ).select_from(
            t.outerjoin(d, t.c.notification_id == d.c.notification_id).outerjoin(
                c, t.c.notification_id == c.c.notification_id
            )
        )
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if agent_id is not None:
            query = query.where(t.c.agent_id == agent_id)
        if status is not None:
            query = query.where(t.c.status == status.value)
        if priority is not None:
            query = query.where(t.c.priority == priority.value)
        if since is not None:
            query = query.where(t.c.completed_at >= as_utc(since))
        if after is not None:
            at, notification_id = as_utc(after[0]), after[1]
            query = query.where(
                sa.or_(t.c.completed_at < at, sa.and_(t.c.completed_at == at, t.c.notification_id < notification_id))
            )
        query = query.order_by(t.c.completed_at.desc(), t.c.notification_id.desc()).limit(limit)
        rows = await self.read(lambda conn: conn.execute(query).all())
        recorded = []
        for row in rows:
            outcome = NotificationOutcome.model_validate(row.outcome)
            if row.digest_id:
                outcome = outcome.model_copy(update={"digest_id": row.digest_id})
            content = None
            if row.content_title is not None:
                content = NotificationContent(
                    notification_id=outcome.notification_id,
                    agent_id=outcome.agent_id,
                    user_id=outcome.user_id,
                    priority=outcome.priority,
                    title=row.content_title,
                    body=row.content_body,
                    created_at=_aware(row.content_created_at),
                )
            recorded.append(RecordedOutcome(outcome, _aware(row.completed_at), content))
        return recorded

    async def mark_digested(self, notification_ids: list[str], digest_id: str) -> None:
        """Note which digest notification carried these notifications (a retry changes nothing)."""
        if not notification_ids:
            return
        t = schema.digested
        rows = [{"notification_id": n, "digest_id": digest_id, "created_at": utcnow()} for n in notification_ids]
        stmt = self._insert(t).values(rows).on_conflict_do_nothing(index_elements=[t.c.notification_id])
        await self.write(lambda conn: conn.execute(stmt))

    async def record_ops_alert(self, notification_id: str, kind: str, message: str) -> None:
        """Record an alert for operators, once per (notification, kind) even if the activity is retried."""
        t = schema.ops_alerts
        stmt = self._insert(t).values(notification_id=notification_id, kind=kind, message=message, created_at=utcnow())
        stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.notification_id, t.c.kind])
        await self.write(lambda conn: conn.execute(stmt))

    async def ops_alerts(self, notification_id: str) -> list[dict[str, Any]]:
        t = schema.ops_alerts
        query = sa.select(t.c.kind, t.c.message, t.c.created_at).where(t.c.notification_id == notification_id)
        return await self.read(lambda conn: [dict(row) for row in conn.execute(query).mappings().all()])

    # --- retention ---------------------------------------------------------------------------------

    async def purge_older_than(
        self,
        cutoff: datetime,
        *,
        now: float | None = None,
        batch_size: int = 1000,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Delete audit rows from before `cutoff`, and dedup keys expired by `now`; rows deleted, by table.

        Each batch is its own short transaction, so a large backlog never holds a long lock on SQLite or
        PostgreSQL; `progress(table, deleted)` is called after each batch (the activity heartbeats there).
        Preferences, contacts, subscriptions, tokens and rules are kept: they are settings, not history.
        """
        now = time.time() if now is None else now
        deleted: dict[str, int] = {}
        for name, (table, key, aged) in _AGED_TABLES.items():
            deleted[name] = await self._delete_in_batches(name, table, key, aged < as_utc(cutoff), batch_size, progress)
        dedup = schema.dedup_keys
        deleted["dedup_keys"] = await self._delete_in_batches(
            "dedup_keys", dedup, dedup.c.key, dedup.c.expires_at <= now, batch_size, progress
        )
        return deleted

    async def _delete_in_batches(
        self,
        name: str,
        table: sa.Table,
        key: sa.Column[Any],
        condition: sa.ColumnElement[bool],
        batch_size: int,
        progress: Callable[[str, int], None] | None,
    ) -> int:
        total = 0
        stmt = sa.delete(table).where(key.in_(sa.select(key).where(condition).limit(batch_size)))
        while True:
            count = await self.write(lambda conn: conn.execute(stmt).rowcount or 0)
            total += count
            if progress is not None:
                progress(name, total)
            if count < batch_size:
                return total

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for this dialect."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)


def preferences_from(data: Any) -> Preferences:
    """A stored preferences document, or the empty default (every channel on) when none was saved."""
    return Preferences.model_validate(data) if data is not None else Preferences()


def _contact_from(data: Any) -> Contact | None:
    return Contact.model_validate(data) if data is not None else None


def _delivered(idempotency_key: str) -> sa.Select[Any]:
    t = schema.delivery_log
    return (
        sa.select(t).where(t.c.idempotency_key == idempotency_key, t.c.result == ChannelStatus.delivered.value).limit(1)
    )


def _attempt(row: Any) -> DeliveryAttempt:
    data = dict(row)
    data.pop("id", None)
    data["channel"] = ChannelName(data["channel"])
    data["started_at"] = _aware(data["started_at"])
    data["finished_at"] = _aware(data["finished_at"])
    return DeliveryAttempt.model_validate(data)


def _content(row: Any) -> NotificationContent:
    data = dict(row)
    data.pop("stored_at", None)
    data["created_at"] = _aware(data["created_at"])
    return NotificationContent.model_validate(data)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the API read while the worker writes; the busy timeout makes writers queue, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
