"""The silences repository: silences as made, the ones in force for one notification, listings, and expiry.

Which silence holds a notification is decided in herald/domain/silences.py; this module only narrows the rows
(in force now, for the notification's agent and user, or for any) and converts them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.domain import silences as rules
from herald.models import Priority, Silence, SilenceMatchers, SilenceQuery, as_utc

LIST_LIMIT_MAX = 500


def _row(silence: Silence) -> dict[str, Any]:
    m = silence.matchers
    return {
        "silence_id": silence.silence_id,
        "agent_id": m.agent_id,
        "rule": m.rule,
        "user_id": m.user_id,
        "dedup_key": m.dedup_key,
        "max_priority": m.max_priority.value,
        "starts_at": as_utc(silence.starts_at),
        "ends_at": as_utc(silence.ends_at),
        "comment": silence.comment,
        "created_by": silence.created_by,
        "created_at": as_utc(silence.created_at),
    }


def _silence(row: Any) -> Silence:
    return Silence(
        silence_id=row.silence_id,
        matchers=SilenceMatchers(
            agent_id=row.agent_id,
            rule=row.rule,
            user_id=row.user_id,
            dedup_key=row.dedup_key,
            max_priority=Priority(row.max_priority),
        ),
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        comment=row.comment,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def _either(column: sa.Column[Any], value: str | None) -> sa.ColumnElement[bool]:
    """The matcher is unset (matches anything) or equals `value`."""
    return column.is_(None) if value is None else sa.or_(column.is_(None), column == value)


class SilenceRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_silence(self, silence: Silence) -> None:
        row = _row(silence)
        await self._db.write(lambda conn: conn.execute(sa.insert(schema.silences).values(**row)))

    async def get_silence(self, silence_id: str) -> Silence | None:
        t = schema.silences
        row = await self._db.read(lambda conn: conn.execute(sa.select(t).where(t.c.silence_id == silence_id)).first())
        return _silence(row) if row is not None else None

    async def list_silences(
        self,
        now: datetime,
        *,
        agent_id: str | None = None,
        user_id: str | None = None,
        include_expired: bool = False,
        limit: int = 100,
    ) -> list[Silence]:
        """Silences, newest first: those matching `agent_id` (and/or `user_id`) exactly when given, those not yet
        ended unless `include_expired`."""
        t = schema.silences
        query = sa.select(t).order_by(t.c.created_at.desc(), t.c.silence_id.desc()).limit(min(limit, LIST_LIMIT_MAX))
        if agent_id is not None:
            query = query.where(t.c.agent_id == agent_id)
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if not include_expired:
            query = query.where(t.c.ends_at > as_utc(now))
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [_silence(row) for row in rows]

    async def matching(self, query: SilenceQuery, now: datetime) -> Silence | None:
        """The silence that holds this notification now (herald.domain.silences.first_match), if any: one read of
        the silences in force whose agent and user matchers allow it."""
        t = schema.silences
        select = sa.select(t).where(
            t.c.starts_at <= as_utc(now),
            t.c.ends_at > as_utc(now),
            _either(t.c.agent_id, query.agent_id),
            _either(t.c.user_id, query.user_id),
        )
        rows = await self._db.read(lambda conn: conn.execute(select).all())
        return rules.first_match((_silence(row) for row in rows), query, now)

    async def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        """End the silence at `now` (one already ended stays as it was); None when there is no such silence."""
        t = schema.silences

        def expire(conn: sa.Connection) -> Silence | None:
            row = conn.execute(sa.select(t).where(t.c.silence_id == silence_id)).first()
            if row is None:
                return None
            before = _silence(row)
            after = rules.expired(before, now)
            if after != before:
                conn.execute(
                    sa.update(t)
                    .where(t.c.silence_id == silence_id)
                    .values(starts_at=as_utc(after.starts_at), ends_at=as_utc(after.ends_at))
                )
            return after

        return await self._db.write(expire)
