"""The on-call repository: escalation policies and on-call schedules, each kept whole under its name.

Who is on call is decided in herald/domain/oncall.py; this module only reads and writes the documents.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.models import as_utc
from herald.models.oncall import EscalationPolicy, Schedule


def _put(table: sa.Table, name: str, spec: dict[str, Any], updated_at: Any) -> Any:
    def put(conn: sa.Connection) -> None:
        row = {"name": name, "spec": spec, "updated_at": as_utc(updated_at)}
        if conn.execute(sa.select(table.c.name).where(table.c.name == name)).first() is None:
            conn.execute(sa.insert(table).values(**row))
        else:
            conn.execute(sa.update(table).where(table.c.name == name).values(**row))

    return put


class OnCallRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- escalation policies ----------------------------------------------------------------------------------

    async def put_policy(self, policy: EscalationPolicy) -> None:
        spec = policy.model_dump(mode="json", exclude={"name", "updated_at"})
        await self._db.write(_put(schema.escalation_policies, policy.name, spec, policy.updated_at))

    async def get_policy(self, name: str) -> EscalationPolicy | None:
        t = schema.escalation_policies
        row = await self._db.read(lambda conn: conn.execute(sa.select(t).where(t.c.name == name)).first())
        return None if row is None else _policy(row)

    async def list_policies(self) -> list[EscalationPolicy]:
        t = schema.escalation_policies
        rows = await self._db.read(lambda conn: conn.execute(sa.select(t).order_by(t.c.name)).all())
        return [_policy(row) for row in rows]

    async def delete_policy(self, name: str) -> bool:
        t = schema.escalation_policies
        result = await self._db.write(lambda conn: conn.execute(sa.delete(t).where(t.c.name == name)))
        return bool(result.rowcount)

    # --- schedules --------------------------------------------------------------------------------------------

    async def put_schedule(self, schedule: Schedule) -> None:
        spec = schedule.model_dump(mode="json", exclude={"name", "updated_at"})
        await self._db.write(_put(schema.schedules, schedule.name, spec, schedule.updated_at))

    async def get_schedule(self, name: str) -> Schedule | None:
        t = schema.schedules
        row = await self._db.read(lambda conn: conn.execute(sa.select(t).where(t.c.name == name)).first())
        return None if row is None else _schedule(row)

    async def get_schedules(self, names: list[str]) -> dict[str, Schedule]:
        """The schedules named (one read), by name; an unknown name is left out."""
        t = schema.schedules
        if not names:
            return {}
        rows = await self._db.read(lambda conn: conn.execute(sa.select(t).where(t.c.name.in_(names))).all())
        return {row.name: _schedule(row) for row in rows}

    async def list_schedules(self) -> list[Schedule]:
        t = schema.schedules
        rows = await self._db.read(lambda conn: conn.execute(sa.select(t).order_by(t.c.name)).all())
        return [_schedule(row) for row in rows]

    async def delete_schedule(self, name: str) -> bool:
        t = schema.schedules
        result = await self._db.write(lambda conn: conn.execute(sa.delete(t).where(t.c.name == name)))
        return bool(result.rowcount)


def _policy(row: Any) -> EscalationPolicy:
    return EscalationPolicy.model_validate({**row.spec, "name": row.name, "updated_at": as_utc(row.updated_at)})


def _schedule(row: Any) -> Schedule:
    return Schedule.model_validate({**row.spec, "name": row.name, "updated_at": as_utc(row.updated_at)})
