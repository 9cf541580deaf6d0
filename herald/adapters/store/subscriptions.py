"""The subscriptions repository: subscriptions as saved, the ones an event may reach, and their delivery state.

Who receives an event is decided in herald/domain/subscriptions.py; this module only narrows the rows (enabled, for
the event's agent or any) and converts them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.models import Subscription, SubscriptionEventType, as_utc


def _row(s: Subscription) -> dict[str, Any]:
    return {
        "name": s.name,
        "url": s.url,
        "events": [e.value for e in s.events],
        "agent_id": s.agent_id,
        "owner": s.owner,
        "enabled": s.enabled,
        "failures": s.failures,
        "last_error": s.last_error,
        "disabled_at": as_utc(s.disabled_at) if s.disabled_at is not None else None,
        "created_at": as_utc(s.created_at),
        "updated_at": as_utc(s.updated_at),
    }


def _subscription(row: Any) -> Subscription:
    return Subscription(
        name=row.name,
        url=row.url,
        events=[SubscriptionEventType(e) for e in row.events],
        agent_id=row.agent_id,
        owner=row.owner,
        enabled=bool(row.enabled),
        failures=row.failures,
        last_error=row.last_error,
        disabled_at=as_utc(row.disabled_at) if row.disabled_at is not None else None,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


class SubscriptionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_subscription(self, subscription: Subscription) -> None:
        """Save it whole (a new one, or one replacing the subscription of the same name)."""
        t = schema.subscriptions
        row = _row(subscription)

        def put(conn: sa.Connection) -> None:
            if conn.execute(sa.select(t.c.name).where(t.c.name == subscription.name)).first() is None:
                conn.execute(sa.insert(t).values(**row))
            else:
                conn.execute(sa.update(t).where(t.c.name == subscription.name).values(**row))

        await self._db.write(put)

    async def get_subscription(self, name: str) -> Subscription | None:
        t = schema.subscriptions
        row = await self._db.read(lambda conn: conn.execute(sa.select(t).where(t.c.name == name)).first())
        return _subscription(row) if row is not None else None

    async def list_subscriptions(self, *, agent_id: str | None = None) -> list[Subscription]:
        """Subscriptions by name: those naming `agent_id` when it is given."""
        t = schema.subscriptions
        query = sa.select(t).order_by(t.c.name)
        if agent_id is not None:
            query = query.where(t.c.agent_id == agent_id)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_subscription(row) for row in rows]

    async def candidates(self, agent_id: str | None) -> list[Subscription]:
        """The enabled subscriptions an event of this agent may reach: those naming it, and those naming none."""
        t = schema.subscriptions
        whose = t.c.agent_id.is_(None) if agent_id is None else sa.or_(t.c.agent_id.is_(None), t.c.agent_id == agent_id)
        query = sa.select(t).where(t.c.enabled.is_(True), whose).order_by(t.c.name)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_subscription(row) for row in rows]

    async def delete_subscription(self, name: str) -> bool:
        t = schema.subscriptions
        result = await self._db.write(lambda conn: conn.execute(sa.delete(t).where(t.c.name == name)))
        return bool(result.rowcount)

    async def mark(
        self, name: str, *, failures: int, last_error: str | None, disable: bool, now: datetime
    ) -> Subscription | None:
        """After an event: its failures in a row and last error, and disabled when `disable`; None when it is gone.
        A success (`failures` 0) keeps the last error for the record."""
        t = schema.subscriptions

        def mark(conn: sa.Connection) -> Subscription | None:
            row = conn.execute(sa.select(t).where(t.c.name == name)).first()
            if row is None:
                return None
            values: dict[str, Any] = {"failures": failures}
            if last_error is not None:
                values["last_error"] = last_error
            if disable:
                values.update(enabled=False, disabled_at=as_utc(now))
            conn.execute(sa.update(t).where(t.c.name == name).values(**values))
            after = conn.execute(sa.select(t).where(t.c.name == name)).first()
            return _subscription(after)

        return await self._db.write(mark)
