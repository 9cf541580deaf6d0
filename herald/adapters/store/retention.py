"""The retention repository: deleting the history older than the retention period (the retention workflow's
activity). Settings (preferences, contacts, subscriptions, tokens, rules) are never purged."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.models import as_utc

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


class RetentionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

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
            count = await self._db.write(lambda conn: conn.execute(stmt).rowcount or 0)
            total += count
            if progress is not None:
                progress(name, total)
            if count < batch_size:
                return total
