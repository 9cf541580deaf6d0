"""The throttle repository: one notification's claim of its window's slots (herald/domain/throttle.py decides).

`claim` is one transaction: a notification already decided gets its decision again (a retried activity counts
nothing twice); otherwise the counters it is measured against are created if missing, locked (PostgreSQL: FOR
UPDATE, in the scopes' sorted order; SQLite: the transaction's first statement is a write, so it holds the
database's write lock before it reads), read, handed to `decide`, and incremented by what it claims. Two
notifications racing for the last slot are serialized on the counter rows: exactly one gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.domain import throttle
from herald.models import ChannelName, as_utc


class ThrottleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self,
        notification_id: str,
        user_id: str,
        agent_id: str,
        window_start: datetime,
        limits: throttle.Limits,
        channels: Sequence[ChannelName],
    ) -> throttle.Decision:
        """Decide whether `notification_id`, planned to `channels`, fits this window's limits, and take its slots."""
        counts, claims = schema.throttle_counts, schema.throttle_claims
        start = as_utc(window_start)
        mine = (counts.c.user_id == user_id) & (counts.c.agent_id == agent_id)
        wanted = throttle.scopes(limits, channels)

        def work(conn: sa.Connection) -> throttle.Decision:
            # A write first (past windows' rows go): on SQLite it takes the write lock before anything is read.
            conn.execute(sa.delete(counts).where(mine, counts.c.window_start < start))
            conn.execute(
                sa.delete(claims).where(
                    claims.c.user_id == user_id, claims.c.agent_id == agent_id, claims.c.window_start < start
                )
            )
            earlier = conn.execute(
                sa.select(claims.c.throttled, claims.c.dropped).where(claims.c.notification_id == notification_id)
            ).first()
            if earlier is not None:
                return throttle.Decision(
                    throttled=earlier.throttled, dropped=tuple(ChannelName(c) for c in earlier.dropped)
                )
            if wanted:
                conn.execute(
                    self._db.insert(counts)
                    .values(
                        [
                            {"user_id": user_id, "agent_id": agent_id, "scope": s, "window_start": start, "count": 0}
                            for s in wanted
                        ]
                    )
                    .on_conflict_do_nothing()
                )
            rows = conn.execute(
                sa.select(counts.c.scope, counts.c.count.label("taken"))
                .where(mine, counts.c.window_start == start, counts.c.scope.in_(wanted))
                .order_by(counts.c.scope)
                .with_for_update()
            ).all()
            decision = throttle.decide(limits, {row.scope: row.taken for row in rows}, channels)
            if decision.claims:
                conn.execute(
                    sa.update(counts)
                    .where(mine, counts.c.window_start == start, counts.c.scope.in_(decision.claims))
                    .values(count=counts.c.count + 1)
                )
            conn.execute(
                sa.insert(claims).values(
                    notification_id=notification_id,
                    user_id=user_id,
                    agent_id=agent_id,
                    window_start=start,
                    throttled=decision.throttled,
                    dropped=[c.value for c in decision.dropped],
                )
            )
            return decision

        return await self._db.write(work)

    async def counts(self, user_id: str, agent_id: str, window_start: datetime) -> dict[str, int]:
        """This window's counters for one user and agent, by scope (for tests and operators)."""
        t = schema.throttle_counts
        query = sa.select(t.c.scope, t.c.count.label("taken")).where(
            t.c.user_id == user_id, t.c.agent_id == agent_id, t.c.window_start == as_utc(window_start)
        )
        return await self._db.read(lambda conn: {row.scope: row.taken for row in conn.execute(query).all()})
