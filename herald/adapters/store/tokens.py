"""The tokens repository: bearer tokens, kept by hash (herald/services/auth.py makes and checks them)."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.models import utcnow


class TokenRecord(NamedTuple):
    """What the store keeps of a token: whose it is, and an agent key's own quota (None: the default)."""

    kind: str
    subject: str
    rate: float | None = None
    burst: int | None = None


class TokenRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save_token(
        self, token_hash: str, kind: str, subject: str, *, rate: float | None = None, burst: int | None = None
    ) -> None:
        stmt = sa.insert(schema.api_tokens).values(
            token_hash=token_hash, kind=kind, subject=subject, created_at=utcnow(), rate=rate, burst=burst
        )
        await self._db.write(lambda conn: conn.execute(stmt))

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        """The token's record for a token hash, or None if no such token was issued."""
        t = schema.api_tokens
        query = sa.select(t.c.kind, t.c.subject, t.c.rate, t.c.burst).where(t.c.token_hash == token_hash)
        row = await self._db.read(lambda conn: conn.execute(query).first())
        return TokenRecord(row.kind, row.subject, row.rate, row.burst) if row is not None else None
