"""The rules repository: the trigger rules, and the version every rule change bumps (how each process's rule
cache knows its compiled rules are stale)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database
from herald.models import TriggerRule, utcnow


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


class RuleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_rules(self) -> list[TriggerRule]:
        t = schema.rules
        rows = await self._db.read(lambda conn: conn.execute(sa.select(t.c.data).order_by(t.c.name)).scalars().all())
        return [TriggerRule.model_validate(row) for row in rows]

    async def get_rule(self, name: str) -> TriggerRule | None:
        t = schema.rules
        data = await self._db.read(lambda conn: conn.scalar(sa.select(t.c.data).where(t.c.name == name)))
        return TriggerRule.model_validate(data) if data is not None else None

    async def put_rule(self, rule: TriggerRule) -> None:
        def put(conn: sa.Connection) -> None:
            self._upsert_rule(conn, rule)
            self._bump(conn, "rules")

        await self._db.write(put)

    async def delete_rule(self, name: str) -> bool:
        def delete(conn: sa.Connection) -> bool:
            deleted = bool(conn.execute(sa.delete(schema.rules).where(schema.rules.c.name == name)).rowcount)
            if deleted:
                self._bump(conn, "rules")
            return deleted

        return await self._db.write(delete)

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

        return await self._db.write(replace)

    async def rules_version(self) -> int:
        """Bumped by every rule change: compare it to know whether compiled rules are stale."""
        query = sa.select(schema.versions.c.version).where(schema.versions.c.name == "rules")
        return int(await self._db.read(lambda conn: conn.scalar(query)) or 0)

    def _upsert_rule(self, conn: sa.Connection, rule: TriggerRule) -> None:
        t = schema.rules
        stmt = self._db.insert(t).values(name=rule.name, data=rule.model_dump(mode="json"), updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.name], set_={"data": stmt.excluded.data, "updated_at": stmt.excluded.updated_at}
        )
        conn.execute(stmt)

    def _bump(self, conn: sa.Connection, name: str) -> None:
        t = schema.versions
        stmt = self._db.insert(t).values(name=name, version=1)
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.name], set_={"version": t.c.version + 1})
        conn.execute(stmt)
