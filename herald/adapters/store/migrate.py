"""The store's schema revision: Alembic's migrations (herald/adapters/store/migrations/) on one connection.

`Store.upgrade` (what `herald db upgrade` runs) takes a database to the head revision. `Store.open` only checks:
an empty database is created at the head (a first run needs no extra step), a database at the head opens, and
any other refuses with `SchemaOutOfDate`, so nothing that serves traffic alters an existing schema on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from herald.adapters.store import schema

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_HINT = "run `herald db upgrade`"
VERSION_TABLE = "alembic_version"  # Alembic's default name

# The revision this code reads and writes: the newest migration's id, which a new migration changes (and
# tests/herald/test_store_migrations.py checks against Alembic's own head). Known here, opening a store at the
# head reads one row and imports no Alembic (nor the Mako and Pygments it brings): a quarter of a second of CPU
# at the start of every process that opens a store. Alembic loads only to migrate or to explain a refusal.
HEAD = "0008"


class SchemaOutOfDate(RuntimeError):
    """The database's schema revision is not the one this Herald's code reads and writes."""


@dataclass(frozen=True)
class Upgraded:
    """What `Store.upgrade` did: the revision before (None: an empty or unversioned database) and after."""

    before: str | None
    after: str
    # The database had Herald's tables but no revision (made by Store.open before migrations): adopted as 0001.
    adopted: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _config(conn: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this code needs (HEAD)."""
    return HEAD


def migrations_head() -> str:
    """The head of the migrations as Alembic reads them: the newest migration's id, which HEAD must equal."""
    heads = _script().get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {heads}"
    return heads[0]


def _upgrade_to_head(conn: sa.Connection) -> None:
    from alembic import command

    command.upgrade(_config(conn), "head")


def current(conn: sa.Connection) -> str | None:
    """The database's revision, or None when it has no alembic_version table (empty, or made before migrations)."""
    # Read directly, not through Alembic's MigrationContext, which logs at INFO on every Store.open.
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    version = conn.scalar(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return str(version) if version is not None else None


def _has_herald_tables(conn: sa.Connection) -> bool:
    return bool(set(sa.inspect(conn).get_table_names()) & set(schema.metadata.tables))


def _lock(conn: sa.Connection, schema_name: str | None) -> None:
    """Hold the migration lock for the rest of this transaction, so one process migrates at a time (the others
    wait, then find the work done); on PostgreSQL, then make the schema Herald's tables live in."""
    if conn.dialect.name == "sqlite":
        # The write lock now, not at the first write: two processes opening a new file don't both create it.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        key = sa.func.hashtext("herald-migrate:" + (schema_name or ""))
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        if schema_name:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema_name}"'))


def upgrade(conn: sa.Connection, schema_name: str | None = None) -> Upgraded:
    """Take the database to the head revision (inside the caller's transaction); an unversioned database made
    by Store.open before migrations is adopted: revision 0001 adds only what it lacks, then stamps it."""
    _lock(conn, schema_name)
    before = current(conn)
    adopted = before is None and _has_herald_tables(conn)
    _upgrade_to_head(conn)
    return Upgraded(before, head(), adopted)


def check(conn: sa.Connection, schema_name: str | None = None) -> None:
    """What Store.open does: accept a database at the head, create an empty one at the head, refuse the rest."""
    wanted = head()
    if current(conn) == wanted:
        return
    _lock(conn, schema_name)
    revision = current(conn)  # again, under the lock: another process may have just created it
    if revision == wanted:
        return
    if revision is None and not _has_herald_tables(conn):
        _upgrade_to_head(conn)
        return
    if revision is None:
        raise SchemaOutOfDate(
            f"the database schema is at no revision (made before Herald had migrations), this Herald needs "
            f"{wanted}: {UPGRADE_HINT}"
        )
    if _known(revision):
        raise SchemaOutOfDate(f"the database schema is at {revision}, this Herald needs {wanted}: {UPGRADE_HINT}")
    raise SchemaOutOfDate(
        f"the database schema is at {revision}, which this Herald does not know (it needs {wanted}): a newer Herald "
        "upgraded it; run that version"
    )


def _known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for an unknown or malformed id
        return False
