"""The store's migrations: a database made before them is adopted by `herald db upgrade` with its rows kept, a
later revision applies on top, and a store on an old schema refuses to open. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from herald.adapters.store import SchemaOutOfDate, Store, migrate, schema
from herald.models import (
    ChannelName,
    ChannelResult,
    ChannelStatus,
    Contact,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    TriggerRule,
    utcnow,
)
from herald_cli.db import shown_url
from tests.conftest import POSTGRES_URL
from tests.herald.fixtures import schema_before_migrations as before
from tests.starter.cli import clean_env, run_cli

T = TypeVar("T")

# What the 0002 revision adds: an old database has none of them until `herald db upgrade`.
EXPIRY_INDEXES = {
    "used_answer_links": "ix_used_answer_links_expires",
    "sms_questions": "ix_sms_questions_expires",
    "snoozes": "ix_snoozes_until",
}


@dataclass
class Database:
    url: str
    env: dict[str, str]  # what `herald db upgrade` reads to find it


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of its own, found by the CLI the way a user's is (HERALD_HOME or HERALD_DATABASE_URL)."""
    if request.param == "sqlite":
        home = tmp_path / "home"
        home.mkdir()
        yield Database(f"sqlite+aiosqlite:///{(home / 'herald.db').resolve()}", clean_env(HERALD_HOME=str(home)))
        return
    server = sa.engine.make_url(POSTGRES_URL)
    try:
        admin = await asyncpg.connect(server.set(drivername="postgresql").render_as_string(False), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc})", pytrace=False)
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc})")
    # A database, not a schema: the CLI has only the URL (Store.open's schema_name is for tests and tools).
    name = f"herald_migrations_{uuid.uuid4().hex}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(False)
    try:
        yield Database(url, clean_env(HERALD_HOME=str(tmp_path / "home"), HERALD_DATABASE_URL=url))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def on(url: str, work: Callable[[sa.Connection], T]) -> T:
    """Run `work` in one transaction on a connection of the database's own, not through a Store."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def revision(conn: sa.Connection) -> str | None:
    return migrate.current(conn)


def indexes(conn: sa.Connection, table: str) -> set[str]:
    return {str(index["name"]) for index in sa.inspect(conn).get_indexes(table)}


def described(conn: sa.Connection) -> dict[str, Any]:
    """Every table's columns, primary key, indexes and unique constraints, as the database reports them."""
    inspector = sa.inspect(conn)
    shape: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        shape[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        }
    return shape


def an_outcome() -> NotificationOutcome:
    return NotificationOutcome(
        notification_id="n-old",
        workflow_id="notification/n-old",
        agent_id="deploy-bot",
        user_id="ada",
        priority=Priority.high,
        status=NotificationStatus.delivered,
        channels={ChannelName.email: ChannelResult(channel=ChannelName.email, status=ChannelStatus.delivered)},
    )


def a_rule() -> TriggerRule:
    return TriggerRule(name="disk-full", condition="disk > 90", user_ids=["ada"])


def fill_todays_database(conn: sa.Connection) -> None:
    """Today's schema, made the way Store.open made it, with rows written the way the Store wrote them."""
    before.create(conn)
    now = utcnow()
    outcome = an_outcome()
    conn.execute(
        sa.insert(before.notifications).values(
            notification_id=outcome.notification_id,
            workflow_id=outcome.workflow_id,
            agent_id=outcome.agent_id,
            user_id=outcome.user_id,
            priority=outcome.priority.value,
            status=outcome.status.value,
            outcome=outcome.model_dump(mode="json"),
            completed_at=now,
        )
    )
    contact = Contact(email="ada@example.com").model_dump(mode="json", exclude_none=True)
    conn.execute(sa.insert(before.contacts).values(user_id="ada", data=contact, updated_at=now))
    conn.execute(
        sa.insert(before.rules).values(name="disk-full", data=a_rule().model_dump(mode="json"), updated_at=now)
    )
    conn.execute(sa.insert(before.versions).values(name="rules", version=3))
    expires = now.timestamp() + 3600
    conn.execute(
        sa.insert(before.used_answer_links).values(nonce="nonce-1", notification_id="n-old", expires_at=expires)
    )


async def test_upgrade_adopts_a_database_made_before_migrations_and_keeps_its_rows(database: Database) -> None:
    await on(database.url, fill_todays_database)

    with pytest.raises(SchemaOutOfDate, match=r"at no revision .* needs 0008: run `herald db upgrade`"):
        await Store.open(database.url)

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "adopted a database made before migrations as 0001, then upgraded to 0008" in out, out
    assert await on(database.url, revision) == "0008"
    for table, index in EXPIRY_INDEXES.items():
        assert index in await on(database.url, lambda conn, t=table: indexes(conn, t))  # type: ignore[misc]

    store = await Store.open(database.url)
    try:
        assert await store.notifications.get_outcome("n-old") == an_outcome()
        assert await store.users.get_contact("ada") == Contact(email="ada@example.com")
        assert await store.rules.get_rule("disk-full") == a_rule()
        assert await store.rules.rules_version() == 3
        assert await store.answers.link_used("nonce-1")
        assert not await store.answers.use_link("nonce-1", "n-old", 0.0)  # still single-use
        # and it writes on the upgraded schema
        await store.rules.put_rule(a_rule().model_copy(update={"condition": "disk > 95"}))
        assert await store.rules.rules_version() == 4
    finally:
        await store.close()

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "already at 0008, nothing to do" in out, out


async def test_a_later_revision_applies_on_top_and_an_old_one_refuses_to_open(database: Database) -> None:
    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0001"))
    assert await on(database.url, revision) == "0001"
    assert "ix_snoozes_until" not in await on(database.url, lambda conn: indexes(conn, "snoozes"))

    with pytest.raises(SchemaOutOfDate) as refused:
        await Store.open(database.url)
    assert str(refused.value) == "the database schema is at 0001, this Herald needs 0008: run `herald db upgrade`"

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "upgraded the schema from 0001 to 0008" in out, out
    assert await on(database.url, revision) == "0008"
    assert "ix_snoozes_until" in await on(database.url, lambda conn: indexes(conn, "snoozes"))
    store = await Store.open(database.url)
    await store.close()


async def test_commands_that_use_the_store_refuse_an_old_schema_naming_the_upgrade(database: Database) -> None:
    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0001"))
    code, out, err = await run_cli(database.env, "contact", "get", "ada")
    assert code == 2, out + err
    assert "error: the database schema is at 0001, this Herald needs 0008: run `herald db upgrade`" in err, err
    assert "Traceback" not in err, err


async def test_a_schema_from_a_newer_herald_refuses_to_open(database: Database) -> None:
    await Store.upgrade(database.url)
    await on(database.url, lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'")))
    with pytest.raises(SchemaOutOfDate, match=r"at 9999, which this Herald does not know .* a newer Herald"):
        await Store.open(database.url)


async def test_an_empty_database_is_created_at_the_head_by_the_cli_or_by_opening_it(database: Database) -> None:
    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "created the schema at 0008" in out, out
    assert await on(database.url, revision) == "0008"


def test_the_upgrade_prints_the_database_url_without_its_password() -> None:
    assert shown_url("postgresql+asyncpg://herald:s3cret@db.internal/herald") == (
        "postgresql+asyncpg://herald:***@db.internal/herald"
    )


async def test_first_revision_makes_exactly_the_schema_store_open_made_before(database: Database) -> None:
    """0001 on an empty database is the same tables, columns, keys, indexes and constraints as the frozen
    create_all it replaces."""
    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0001"))
    migrated = await on(database.url, described)
    await on(database.url, lambda conn: command.downgrade(migrate._config(conn), "base"))
    assert set(await on(database.url, lambda conn: sa.inspect(conn).get_table_names())) <= {"alembic_version"}
    await on(database.url, before.create)
    assert await on(database.url, described) == migrated


async def test_the_head_revision_is_what_schema_py_and_answers_py_describe(database: Database) -> None:
    """A table change without its revision (or a revision without the change) fails here."""
    await Store.upgrade(database.url)

    def differences(conn: sa.Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), schema.metadata))

    assert await on(database.url, differences) == []


async def test_opening_an_empty_database_creates_it_at_the_head(database: Database) -> None:
    store = await Store.open(database.url)
    try:
        await store.users.put_contact("ada", Contact(email="ada@example.com"))
    finally:
        await store.close()
    assert await on(database.url, revision) == "0008"


async def test_0003_adds_the_silences_table_on_top_of_0002_and_downgrades_without_it(database: Database) -> None:
    """A store at 0002 (before silences) refuses to open, is upgraded to the head with its rows kept, and keeps
    silences; 0003's downgrade drops only the silences table."""
    from herald.domain.silences import new_silence
    from herald.models import SilenceInput

    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0002"))
    assert "silences" not in await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    with pytest.raises(SchemaOutOfDate, match="is at 0002, this Herald needs 0008"):
        await Store.open(database.url)

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "upgraded the schema from 0002 to 0008" in out, out
    assert {"ix_silences_agent_id", "ix_silences_user_id", "ix_silences_ends_at"} <= await on(
        database.url, lambda conn: indexes(conn, "silences")
    )
    now = utcnow()
    silence = new_silence(
        SilenceInput.model_validate(
            {"matchers": {"agent_id": "deploy-bot"}, "ends_at": now + timedelta(hours=1), "comment": "maintenance"}
        ),
        "admin",
        now,
    )
    store = await Store.open(database.url)
    try:
        await store.silences.put_silence(silence)
        assert await store.silences.get_silence(silence.silence_id) == silence
    finally:
        await store.close()

    await on(database.url, lambda conn: command.downgrade(migrate._config(conn), "0002"))
    assert "silences" not in await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    assert "ix_snoozes_until" in await on(database.url, lambda conn: indexes(conn, "snoozes"))


async def test_0005_adds_the_throttle_tables_on_top_of_0004_and_downgrades_without_them(database: Database) -> None:
    """A store at 0004 (before throttling) refuses to open, is upgraded to 0005 with its silences kept, counts and
    claims there; 0005's downgrade drops only the throttle tables."""
    from herald.domain.silences import new_silence
    from herald.domain.throttle import Limits
    from herald.models import SilenceInput

    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0004"))
    now = utcnow()
    silence = new_silence(
        SilenceInput.model_validate(
            {"matchers": {"agent_id": "deploy-bot"}, "ends_at": now + timedelta(hours=1), "comment": "maintenance"}
        ),
        "admin",
        now,
    )
    row = {**silence.matchers.model_dump(mode="json"), "silence_id": silence.silence_id}
    row |= {"starts_at": silence.starts_at, "ends_at": silence.ends_at, "comment": silence.comment}
    row |= {"created_by": silence.created_by, "created_at": silence.created_at}
    await on(database.url, lambda conn: conn.execute(sa.insert(schema.silences).values(**row)))
    assert "throttle_counts" not in await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    with pytest.raises(SchemaOutOfDate, match="is at 0004, this Herald needs 0008"):
        await Store.open(database.url)

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "upgraded the schema from 0004 to 0008" in out, out
    assert "ix_throttle_claims_user_agent_window" in await on(
        database.url, lambda conn: indexes(conn, "throttle_claims")
    )
    store = await Store.open(database.url)
    try:
        assert await store.silences.get_silence(silence.silence_id) == silence
        limits = Limits(agent=1)
        first = await store.throttle.claim("n-1", "ada", "deploy-bot", now, limits, [ChannelName.email])
        second = await store.throttle.claim("n-2", "ada", "deploy-bot", now, limits, [ChannelName.email])
        assert (first.throttled, second.throttled) == (False, True)
    finally:
        await store.close()

    await on(database.url, lambda conn: command.downgrade(migrate._config(conn), "0004"))
    tables = await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    assert "throttle_counts" not in tables and "throttle_claims" not in tables
    assert "silences" in tables


async def test_0006_adds_the_subscriptions_table_on_top_of_0005_and_downgrades_without_it(database: Database) -> None:
    """A store at 0005 (before subscriptions) refuses to open and is upgraded to the head, where a subscription is kept
    and read back; 0006's downgrade drops only that table."""
    from herald.domain.subscriptions import saved
    from herald.models import SubscriptionEventType, SubscriptionInput

    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0005"))
    assert "subscriptions" not in await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    with pytest.raises(SchemaOutOfDate, match="is at 0005, this Herald needs 0008"):
        await Store.open(database.url)

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "upgraded the schema from 0005 to 0008" in out, out
    store = await Store.open(database.url)
    try:
        body = SubscriptionInput(url="https://example.com/hook", events=[SubscriptionEventType.delivered])
        made = saved("ops", body, "admin", utcnow(), None)
        await store.subscriptions.put_subscription(made)
        assert await store.subscriptions.get_subscription("ops") == made
    finally:
        await store.close()

    await on(database.url, lambda conn: command.downgrade(migrate._config(conn), "0005"))
    tables = await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    assert "subscriptions" not in tables and "throttle_counts" in tables


async def test_0008_adds_policies_and_schedules_on_top_of_0007_and_downgrades_without_them(database: Database) -> None:
    """A store at 0007 is upgraded to 0008, where a policy and a schedule are kept, listed, read back and deleted;
    0008's downgrade drops only those two tables."""
    from herald.models.oncall import EscalationPolicy, Schedule

    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0007"))
    with pytest.raises(SchemaOutOfDate, match="is at 0007, this Herald needs 0008"):
        await Store.open(database.url)
    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    store = await Store.open(database.url)
    try:
        policy = EscalationPolicy(
            name="db",
            updated_at=utcnow(),
            steps=[{"targets": ["user:ada", "schedule:primary"], "ack_within_seconds": 60}],
            repeat=2,
        )
        schedule = Schedule(
            name="primary",
            updated_at=utcnow(),
            time_zone="Europe/Berlin",
            rotation={"members": ["ada", "bob"], "shift_hours": 24, "starts_at": "2026-03-27T09:00:00"},
            overrides=[{"user_id": "cy", "starts_at": "2026-04-01T09:00:00", "ends_at": "2026-04-02T09:00:00+02:00"}],
        )
        await store.oncall.put_policy(policy)
        await store.oncall.put_schedule(schedule)
        assert await store.oncall.get_policy("db") == policy
        assert await store.oncall.get_schedule("primary") == schedule
        assert [p.name for p in await store.oncall.list_policies()] == ["db"]
        assert await store.oncall.get_schedules(["primary", "nope"]) == {"primary": schedule}
        await store.oncall.put_policy(policy.model_copy(update={"repeat": 0}))
        assert (await store.oncall.get_policy("db")).repeat == 0  # type: ignore[union-attr]
        assert await store.oncall.delete_policy("db") and not await store.oncall.delete_policy("db")
        assert await store.oncall.get_policy("db") is None
    finally:
        await store.close()
    await on(database.url, lambda conn: command.downgrade(migrate._config(conn), "0007"))
    tables = await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    assert "schedules" not in tables and "escalation_policies" not in tables and "groups" in tables


def test_the_revision_the_code_needs_is_the_newest_migration() -> None:
    """migrate.HEAD is what Store.open compares with, without loading Alembic: a new migration must move it."""
    assert migrate.HEAD == migrate.migrations_head()


async def test_0007_adds_the_groups_table_on_top_of_0006_and_downgrades_without_it(database: Database) -> None:
    """A store at 0006 (before groups) refuses to open and is upgraded to 0007, where a group is kept and its
    members read back; 0007's downgrade drops only that table."""
    from herald.models import Group

    await on(database.url, lambda conn: command.upgrade(migrate._config(conn), "0006"))
    assert "groups" not in await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    with pytest.raises(SchemaOutOfDate, match="is at 0006, this Herald needs 0008"):
        await Store.open(database.url)

    code, out, err = await run_cli(database.env, "db", "upgrade")
    assert code == 0, out + err
    assert "upgraded the schema from 0006 to 0008" in out, out
    store = await Store.open(database.url)
    try:
        now = utcnow()
        await store.groups.put(Group(name="oncall", members=["ada", "grace"], created_at=now, updated_at=now))
        assert await store.groups.members("oncall") == ["ada", "grace"]
    finally:
        await store.close()

    await on(database.url, lambda conn: command.downgrade(migrate._config(conn), "0006"))
    tables = await on(database.url, lambda conn: sa.inspect(conn).get_table_names())
    assert "groups" not in tables and "subscriptions" in tables
