"""The store: async SQLAlchemy Core over SQLite (embedded default) or PostgreSQL (several workers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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
    utcnow,
)
from herald.models.inbox import InboxReadState, NotificationContent
from herald.store import schema


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


def _utc(value: datetime) -> datetime:
    """SQLite keeps the wall time and drops the offset, so write every timestamp in UTC."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class Store:
    """Preferences, contacts, dedup keys, the delivery log and outcomes, behind one small async API."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    @classmethod
    async def open(cls, url: str, *, schema_name: str | None = None) -> Store:
        """Connect and create the tables if they are missing.

        `schema_name` (PostgreSQL only) keeps Herald's tables in their own schema, e.g. one per test run.
        """
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
        store = cls(engine)
        async with engine.begin() as conn:
            if schema_name and engine.dialect.name == "postgresql":
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"'))
            await conn.run_sync(schema.metadata.create_all)
            await conn.run_sync(_create_missing_indexes)
        return store

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # --- preferences and contacts ----------------------------------------------------------------

    async def get_preferences(self, user_id: str) -> Preferences:
        """The user's preferences, or the empty default (every channel on) if none were saved."""
        data = await self._get_json(schema.preferences, user_id)
        return Preferences.model_validate(data) if data is not None else Preferences()

    async def put_preferences(self, user_id: str, preferences: Preferences) -> None:
        await self._put_json(schema.preferences, user_id, preferences.model_dump(mode="json", exclude_none=True))

    async def get_contact(self, user_id: str) -> Contact | None:
        data = await self._get_json(schema.contacts, user_id)
        return Contact.model_validate(data) if data is not None else None

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
        contact = await self.get_contact(user_id)
        if contact is not None:
            await self.put_contact(user_id, contact.model_copy(update={field: reason}))

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
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]:
        t = schema.push_subscriptions
        query = sa.select(t.c.subscription).where(t.c.user_id == user_id).order_by(t.c.created_at)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [PushSubscription.model_validate(row) for row in rows]

    async def remove_push_subscription(self, user_id: str, endpoint: str) -> bool:
        t = schema.push_subscriptions
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(t).where(t.c.user_id == user_id, t.c.endpoint == endpoint))
        return bool(result.rowcount)

    # --- trigger rules ---------------------------------------------------------------------------

    async def list_rules(self) -> list[TriggerRule]:
        t = schema.rules
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(t.c.data).order_by(t.c.name))).scalars().all()
        return [TriggerRule.model_validate(row) for row in rows]

    async def get_rule(self, name: str) -> TriggerRule | None:
        t = schema.rules
        async with self.engine.connect() as conn:
            data = await conn.scalar(sa.select(t.c.data).where(t.c.name == name))
        return TriggerRule.model_validate(data) if data is not None else None

    async def put_rule(self, rule: TriggerRule) -> None:
        async with self.engine.begin() as conn:
            await self._upsert_rule(conn, rule)
            await self._bump(conn, "rules")

    async def delete_rule(self, name: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(schema.rules).where(schema.rules.c.name == name))
            if result.rowcount:
                await self._bump(conn, "rules")
        return bool(result.rowcount)

    async def replace_rules(self, rules: list[TriggerRule]) -> RulesDiff:
        """Make the stored set exactly `rules`, in one transaction; say what was created, updated, deleted."""
        t = schema.rules
        wanted = {rule.name: rule for rule in rules}
        async with self.engine.begin() as conn:
            current = {
                row.name: TriggerRule.model_validate(row.data)
                for row in await conn.execute(sa.select(t.c.name, t.c.data))
            }
            diff = RulesDiff(
                created=sorted(set(wanted) - set(current)),
                updated=sorted(n for n in set(wanted) & set(current) if wanted[n] != current[n]),
                deleted=sorted(set(current) - set(wanted)),
                unchanged=sorted(n for n in set(wanted) & set(current) if wanted[n] == current[n]),
            )
            if diff.deleted:
                await conn.execute(sa.delete(t).where(t.c.name.in_(diff.deleted)))
            for name in diff.created + diff.updated:
                await self._upsert_rule(conn, wanted[name])
            if diff.changed:
                await self._bump(conn, "rules")
        return diff

    async def rules_version(self) -> int:
        """Bumped by every rule change: compare it to know whether compiled rules are stale."""
        async with self.engine.connect() as conn:
            value = await conn.scalar(sa.select(schema.versions.c.version).where(schema.versions.c.name == "rules"))
        return int(value or 0)

    async def _upsert_rule(self, conn: Any, rule: TriggerRule) -> None:
        t = schema.rules
        stmt = self._insert(t).values(name=rule.name, data=rule.model_dump(mode="json"), updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.name], set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
        )
        await conn.execute(stmt)

    async def _bump(self, conn: Any, name: str) -> None:
        t = schema.versions
        stmt = self._insert(t).values(name=name, version=1)
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.name], set_={"version": t.c.version + 1})
        await conn.execute(stmt)

    # --- bearer tokens ---------------------------------------------------------------------------

    async def save_token(self, token_hash: str, kind: str, subject: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(schema.api_tokens).values(
                    token_hash=token_hash, kind=kind, subject=subject, created_at=utcnow()
                )
            )

    async def find_token(self, token_hash: str) -> tuple[str, str] | None:
        """(kind, subject) for a token hash, or None if no such token was issued."""
        t = schema.api_tokens
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t.c.kind, t.c.subject).where(t.c.token_hash == token_hash))).first()
        return (row.kind, row.subject) if row is not None else None

    async def _get_json(self, table: sa.Table, user_id: str) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.select(table.c.data).where(table.c.user_id == user_id))

    async def _put_json(self, table: sa.Table, user_id: str, data: Any) -> None:
        stmt = self._insert(table).values(user_id=user_id, data=data, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.user_id], set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

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
        async with self.engine.begin() as conn:
            await conn.execute(stmt)
            owner = await conn.scalar(sa.select(t.c.notification_id).where(t.c.key == key))
        assert owner is not None  # the row was inserted or already there
        return str(owner)

    async def purge_dedup_keys(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.delete(schema.dedup_keys).where(schema.dedup_keys.c.expires_at <= now))
        return result.rowcount or 0

    # --- delivery log ----------------------------------------------------------------------------

    async def record_attempt(self, attempt: DeliveryAttempt, content: NotificationContent | None = None) -> None:
        """Log the attempt; with `content`, keep what the notification said too (once: later attempts change nothing)."""
        row = attempt.model_dump(mode="python", exclude={"provider_status", "provider_error_code"})
        row["started_at"], row["finished_at"] = _utc(attempt.started_at), _utc(attempt.finished_at)
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(schema.delivery_log).values(**row))
            if content is not None:
                await conn.execute(self._keep_content(content))

    async def keep_content(self, content: NotificationContent) -> None:
        """Keep what a notification said when no attempt will (it went to the digest); the first write wins."""
        async with self.engine.begin() as conn:
            await conn.execute(self._keep_content(content))

    def _keep_content(self, content: NotificationContent) -> Any:
        c = schema.notification_content
        values = content.model_dump(mode="python")
        values.update(priority=content.priority.value, created_at=_utc(content.created_at), stored_at=utcnow())
        return self._insert(c).values(**values).on_conflict_do_nothing(index_elements=[c.c.notification_id])

    async def get_content(self, notification_id: str) -> NotificationContent | None:
        c = schema.notification_content
        query = sa.select(c).where(c.c.notification_id == notification_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _content(row) if row is not None else None

    async def find_delivered(self, idempotency_key: str) -> DeliveryAttempt | None:
        """The successful attempt for this (notification, channel), if one was logged: never send twice."""
        t = schema.delivery_log
        query = (
            sa.select(t)
            .where(t.c.idempotency_key == idempotency_key, t.c.result == ChannelStatus.delivered.value)
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _attempt(row) if row is not None else None

    async def attempts(self, notification_id: str) -> list[DeliveryAttempt]:
        """Every attempt in order, with what the provider reported about it afterwards."""
        t, r = schema.delivery_log, schema.provider_receipts
        query = (
            sa.select(t, r.c.status.label("provider_status"), r.c.error_code.label("provider_error_code"))
            .select_from(t.outerjoin(r, t.c.provider_message_id == r.c.provider_message_id))
            .where(t.c.notification_id == notification_id)
            .order_by(t.c.id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_attempt(row) for row in rows]

    async def record_provider_status(
        self, provider_message_id: str, status: str, error_code: str | None = None
    ) -> bool:
        """Record a provider's later report on a message; False when no attempt in the log sent that message."""
        t, r = schema.delivery_log, schema.provider_receipts
        async with self.engine.begin() as conn:
            known = await conn.scalar(sa.select(t.c.id).where(t.c.provider_message_id == provider_message_id).limit(1))
            if known is None:
                return False
            stmt = self._insert(r).values(
                provider_message_id=provider_message_id, status=status, error_code=error_code, updated_at=utcnow()
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[r.c.provider_message_id],
                set_={k: stmt.excluded[k] for k in ("status", "error_code", "updated_at")},
            )
            await conn.execute(stmt)
        return True

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
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def get_outcome(self, notification_id: str) -> NotificationOutcome | None:
        t, d = schema.notifications, schema.digested
        query = (
            sa.select(t.c.outcome, d.c.digest_id)
            .select_from(t.outerjoin(d, t.c.notification_id == d.c.notification_id))
            .where(t.c.notification_id == notification_id)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
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
            query = query.where(t.c.completed_at >= _utc(since))
        if after is not None:
            at, notification_id = _utc(after[0]), after[1]
            query = query.where(
                sa.or_(t.c.completed_at < at, sa.and_(t.c.completed_at == at, t.c.notification_id < notification_id))
            )
        query = query.order_by(t.c.completed_at.desc(), t.c.notification_id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
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
        async with self.engine.begin() as conn:
            await conn.execute(
                self._insert(t).values(rows).on_conflict_do_nothing(index_elements=[t.c.notification_id])
            )

    async def record_ops_alert(self, notification_id: str, kind: str, message: str) -> None:
        """Record an alert for operators, once per (notification, kind) even if the activity is retried."""
        t = schema.ops_alerts
        stmt = self._insert(t).values(notification_id=notification_id, kind=kind, message=message, created_at=utcnow())
        async with self.engine.begin() as conn:
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=[t.c.notification_id, t.c.kind]))

    async def ops_alerts(self, notification_id: str) -> list[dict[str, Any]]:
        t = schema.ops_alerts
        query = sa.select(t.c.kind, t.c.message, t.c.created_at).where(t.c.notification_id == notification_id)
        async with self.engine.connect() as conn:
            return [dict(row) for row in (await conn.execute(query)).mappings().all()]

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
            deleted[name] = await self._delete_in_batches(name, table, key, aged < _utc(cutoff), batch_size, progress)
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
        while True:
            batch = sa.select(key).where(condition).limit(batch_size)
            async with self.engine.begin() as conn:
                result = await conn.execute(sa.delete(table).where(key.in_(batch)))
            count = result.rowcount or 0
            total += count
            if progress is not None:
                progress(name, total)
            if count < batch_size:
                return total

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for this dialect."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)


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


def _create_missing_indexes(conn: sa.Connection) -> None:
    """create_all adds indexes only with new tables; a database made before an index existed gets it here."""
    for index in schema.AUDIT_INDEXES:
        index.create(conn, checkfirst=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the API read while the worker writes; the busy timeout makes writers queue, not fail."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
