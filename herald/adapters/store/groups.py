"""The groups repository: groups (teams) as saved, listed by name, and a group's members.

`members(name)` is what a group notification and an escalation step read: the member user ids in the order saved,
or None when there is no such group.
"""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.models import Group, as_utc


def _group(row: Any) -> Group:
    return Group(
        name=row.name,
        members=list(row.members),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


class GroupRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, group: Group) -> Group:
        """Save it whole: a new group, or new members for the group of that name (its created_at kept). Returns the
        group as saved."""
        t = schema.groups

        def put(conn: sa.Connection) -> Group:
            before = conn.execute(sa.select(t).where(t.c.name == group.name)).first()
            if before is None:
                conn.execute(
                    sa.insert(t).values(
                        name=group.name,
                        members=list(group.members),
                        created_at=as_utc(group.created_at),
                        updated_at=as_utc(group.updated_at),
                    )
                )
                return group
            conn.execute(
                sa.update(t)
                .where(t.c.name == group.name)
                .values(members=list(group.members), updated_at=as_utc(group.updated_at))
            )
            return group.model_copy(update={"created_at": as_utc(before.created_at)})

        return await self._db.write(put)

    async def get(self, name: str) -> Group | None:
        t = schema.groups
        row = await self._db.read(lambda conn: conn.execute(sa.select(t).where(t.c.name == name)).first())
        return _group(row) if row is not None else None

    async def list(self) -> builtins.list[Group]:
        """Every group, by name."""
        t = schema.groups
        rows = await self._db.read(lambda conn: conn.execute(sa.select(t).order_by(t.c.name)).all())
        return [_group(row) for row in rows]

    async def delete(self, name: str) -> bool:
        """Delete the group; False when there was none. Notifications already sent to it are not touched."""
        t = schema.groups
        result = await self._db.write(lambda conn: conn.execute(sa.delete(t).where(t.c.name == name)))
        return bool(result.rowcount)

    async def members(self, name: str) -> builtins.list[str] | None:
        """The group's member user ids in the order saved; None when there is no group of that name."""
        t = schema.groups
        row = await self._db.read(lambda conn: conn.execute(sa.select(t.c.members).where(t.c.name == name)).first())
        return list(row.members) if row is not None else None
