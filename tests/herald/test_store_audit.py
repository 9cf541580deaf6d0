"""The audit list (keyset pages, filters) and the retention cleanup, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from herald.adapters.store import PURGED_TABLES, RecordedOutcome, Store
from herald.adapters.store import schema as tables
from herald.models import (
    ChannelName,
    ChannelResult,
    ChannelStatus,
    DeliveryAttempt,
    NotificationOutcome,
    NotificationStatus,
    Priority,
)
from herald.models.inbox import InboxReadState, NotificationContent
from tests.herald import test_store
from tests.herald.fixtures import schema_before_migrations as before

# test_store's parametrized store (SQLite, and PostgreSQL when it answers), as the fixture `db`.
db = test_store.store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def outcome(
    notification_id: str,
    *,
    user_id: str = "ada",
    agent_id: str = "deploy-bot",
    status: NotificationStatus = NotificationStatus.delivered,
    priority: Priority = Priority.medium,
) -> NotificationOutcome:
    return NotificationOutcome(
        notification_id=notification_id,
        workflow_id=f"notification/{notification_id}",
        agent_id=agent_id,
        user_id=user_id,
        priority=priority,
        status=status,
        channels={
            ChannelName.email: ChannelResult(channel=ChannelName.email, status=ChannelStatus.delivered, attempt_count=1)
        },
    )


def content(notification_id: str, created_at: datetime = T0, title: str = "Deploy finished") -> NotificationContent:
    return NotificationContent(
        notification_id=notification_id,
        agent_id="deploy-bot",
        user_id="ada",
        title=title,
        body="all green",
        priority=Priority.medium,
        created_at=created_at,
    )


def delivered(notification_id: str, finished_at: datetime, provider_message_id: str | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(
        notification_id=notification_id,
        workflow_id=f"notification/{notification_id}",
        channel=ChannelName.email,
        attempt=1,
        idempotency_key=f"notification/{notification_id}/email",
        result=ChannelStatus.delivered,
        provider_message_id=provider_message_id,
        started_at=finished_at - timedelta(seconds=1),
        finished_at=finished_at,
    )


async def set_time(store: Store, table: sa.Table, column: str, key: sa.ColumnElement[bool], at: datetime) -> None:
    """Age a row: the store stamps rows with the clock, a test needs them at a chosen instant."""
    async with store.engine.begin() as conn:
        await conn.execute(sa.update(table).where(key).values({column: at}))


async def record_at(store: Store, item: NotificationOutcome, at: datetime) -> None:
    await store.notifications.record_outcome(item)
    n = tables.notifications
    await set_time(store, n, "completed_at", n.c.notification_id == item.notification_id, at)


async def count(store: Store, table: sa.Table) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


# --- the audit list ------------------------------------------------------------------------------


async def test_list_is_newest_first_with_filters(db: Store) -> None:
    await record_at(db, outcome("n1"), T0)
    await record_at(db, outcome("n2", status=NotificationStatus.failed, priority=Priority.high), T0 + timedelta(1))
    await record_at(db, outcome("n3", user_id="bob", agent_id="other"), T0 + timedelta(2))

    def ids(rows: list[RecordedOutcome]) -> list[str]:
        return [r.outcome.notification_id for r in rows]

    assert ids(await db.notifications.list_outcomes()) == ["n3", "n2", "n1"]
    assert ids(await db.notifications.list_outcomes(user_id="ada")) == ["n2", "n1"]
    assert ids(await db.notifications.list_outcomes(agent_id="other")) == ["n3"]
    assert ids(await db.notifications.list_outcomes(status=NotificationStatus.failed)) == ["n2"]
    assert ids(await db.notifications.list_outcomes(priority=Priority.high, user_id="bob")) == []
    assert ids(await db.notifications.list_outcomes(since=T0 + timedelta(1))) == ["n3", "n2"]
    rows = await db.notifications.list_outcomes(limit=1)
    assert ids(rows) == ["n3"] and rows[0].completed_at == T0 + timedelta(2)
    assert rows[0].outcome == outcome("n3", user_id="bob", agent_id="other")


async def test_keyset_pages_cover_every_row_once_even_with_equal_times(db: Store) -> None:
    for i in range(7):
        # n0..n3 share one instant: the id breaks the tie, so no row is skipped or repeated across pages
        await record_at(db, outcome(f"n{i}"), T0 if i < 4 else T0 + timedelta(minutes=i))
    seen: list[str] = []
    after = None
    while True:
        page = await db.notifications.list_outcomes(after=after, limit=3)
        seen += [r.outcome.notification_id for r in page]
        if len(page) < 3:
            break
        after = (page[-1].completed_at, page[-1].outcome.notification_id)
    assert seen == ["n6", "n5", "n4", "n3", "n2", "n1", "n0"]


async def test_list_carries_the_digest_that_took_it(db: Store) -> None:
    await db.notifications.record_outcome(outcome("n1", status=NotificationStatus.digested))
    await db.notifications.mark_digested(["n1"], "digest-1")
    (row,) = await db.notifications.list_outcomes()
    assert row.outcome.digest_id == "digest-1"


async def test_list_carries_what_the_notification_said_once_an_attempt_kept_it(db: Store) -> None:
    await db.notifications.record_attempt(delivered("n1", T0), content("n1", T0 - timedelta(seconds=5)))
    # a retry keeps the first content: the notification's text does not change between attempts
    await db.notifications.record_attempt(delivered("n1", T0), content("n1", T0, title="something else"))
    await db.notifications.record_outcome(outcome("n1"))
    await db.notifications.record_outcome(outcome("n2", status=NotificationStatus.suppressed_duplicate))
    rows = {r.outcome.notification_id: r for r in await db.notifications.list_outcomes()}
    kept = rows["n1"].content
    assert kept is not None and (kept.title, kept.body) == ("Deploy finished", "all green")
    assert kept.created_at == T0 - timedelta(seconds=5)
    assert rows["n2"].content is None, "never sent on a channel: nothing was kept"
    assert await db.notifications.get_content("n1") == kept


async def test_inbox_read_marks_round_trip_per_user(db: Store) -> None:
    assert await db.users.get_inbox_state("ada") == InboxReadState()
    marks = InboxReadState(read_up_to=T0, read_ids={"n9": T0 + timedelta(minutes=1)})
    await db.users.put_inbox_state("ada", marks)
    assert await db.users.get_inbox_state("ada") == marks
    assert await db.users.get_inbox_state("bob") == InboxReadState()


# --- retention -----------------------------------------------------------------------------------


async def seed_old_and_new(store: Store, now: datetime, days: int) -> None:
    """In every aged table one row just past the retention period and one just inside it."""
    old, new = now - timedelta(days=days, minutes=1), now - timedelta(days=days) + timedelta(minutes=1)
    for name, at in (("old", old), ("new", new)):
        await store.notifications.record_attempt(
            delivered(name, at, provider_message_id=f"msg-{name}"), content(name, at)
        )
        c = tables.notification_content
        await set_time(store, c, "stored_at", c.c.notification_id == name, at)
        await record_at(store, outcome(name), at)
        await store.notifications.record_provider_status(f"msg-{name}", "delivered")
        r = tables.provider_receipts
        await set_time(store, r, "updated_at", r.c.provider_message_id == f"msg-{name}", at)
        await store.notifications.mark_digested([name], "digest-1")
        await set_time(store, tables.digested, "created_at", tables.digested.c.notification_id == name, at)
        await store.notifications.record_ops_alert(name, "unconfirmed", "confirmed on 1 of 2 channels")
        await set_time(store, tables.ops_alerts, "created_at", tables.ops_alerts.c.notification_id == name, at)
    # dedup keys age by their own window: one expired, one live
    await store.notifications.claim_dedup_key("expired", "old", 300, now=now.timestamp() - 301)
    await store.notifications.claim_dedup_key("live", "new", 300, now=now.timestamp() - 10)


async def test_purge_deletes_exactly_the_older_rows(db: Store) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    await seed_old_and_new(db, now, 30)
    deleted = await db.retention.purge_older_than(now - timedelta(days=30), now=now.timestamp())
    assert deleted == dict.fromkeys(PURGED_TABLES, 1)
    assert [a.notification_id for a in await db.notifications.attempts("new")] == ["new"]
    assert await db.notifications.attempts("old") == []
    assert await db.notifications.get_outcome("old") is None
    kept = await db.notifications.get_outcome("new")
    assert kept is not None and kept.digest_id == "digest-1"
    assert [a.provider_status for a in await db.notifications.attempts("new")] == ["delivered"]
    assert await db.notifications.ops_alerts("old") == [] and len(await db.notifications.ops_alerts("new")) == 1
    assert await db.notifications.claim_dedup_key("live", "someone-else", 300, now=now.timestamp()) == "new"
    assert await db.notifications.claim_dedup_key("expired", "someone-else", 300, now=now.timestamp()) == "someone-else"
    assert await db.retention.purge_older_than(now - timedelta(days=30), now=now.timestamp()) == dict.fromkeys(
        PURGED_TABLES, 0
    )


async def test_purge_works_in_batches_and_reports_progress(db: Store) -> None:
    old = T0 - timedelta(days=40)
    for i in range(5):
        await db.notifications.record_attempt(delivered(f"n{i}", old))
    await db.notifications.record_attempt(delivered("fresh", T0))
    progress: list[tuple[str, int]] = []
    deleted = await db.retention.purge_older_than(
        T0 - timedelta(days=30), batch_size=2, progress=lambda t, n: progress.append((t, n))
    )
    assert deleted["delivery_log"] == 5
    assert [n for t, n in progress if t == "delivery_log"] == [2, 4, 5]
    assert await count(db, tables.delivery_log) == 1
    assert {t for t, _ in progress} == set(PURGED_TABLES)


async def test_upgrade_adds_missing_audit_indexes(tmp_path: Path) -> None:
    """A database made before the audit indexes existed (and before migrations: no alembic_version) gets them
    from `herald db upgrade`, which adopts it as revision 0001 (Store.open added them before migrations)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:  # the schema Store.open made before migrations, less one audit index
        await conn.run_sync(before.create)
        await conn.execute(sa.text("DROP INDEX ix_notifications_completed"))
    await engine.dispose()
    upgraded = await Store.upgrade(url)
    assert upgraded.adopted
    reopened = await Store.open(url)
    try:
        async with reopened.engine.connect() as conn:
            names = await conn.run_sync(lambda c: {i["name"] for i in sa.inspect(c).get_indexes("notifications")})
        assert "ix_notifications_completed" in names
    finally:
        await reopened.close()
