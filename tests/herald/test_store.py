"""The store, the same tests on SQLite (the embedded default) and PostgreSQL (several workers)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa

from herald.adapters.channels.webhook import WebhookChannel
from herald.adapters.store import Store, schema
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    Contact,
    DeliveryAttempt,
    DeliveryRequest,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
)
from herald.services.delivery import DeliveryService
from tests.conftest import POSTGRES_URL, WEBHOOK_SECRET
from tests.fakes.http import FakeHTTPServer

NOW = 1_700_000_000.0
WINDOW = 300.0


async def _postgres_reachable() -> str | None:
    """None if PostgreSQL answers, else why not."""
    url = sa.engine.make_url(POSTGRES_URL).set(drivername="postgresql")
    try:
        conn = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'herald.db'}"
        await Store.upgrade(url)
        s = await Store.open(url)
        try:
            yield s
        finally:
            await s.close()
        return

    problem = await _postgres_reachable()
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({problem})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the store tests on PostgreSQL too", pytrace=False)
        pytest.skip(message)
    schema_name = f"herald_test_{uuid.uuid4().hex}"
    await Store.upgrade(POSTGRES_URL, schema_name=schema_name)
    s = await Store.open(POSTGRES_URL, schema_name=schema_name)
    try:
        yield s
    finally:
        async with s.engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE'))
        await s.close()


# --- preferences and contacts --------------------------------------------------------------------


async def test_preferences_default_when_missing(store: Store) -> None:
    assert await store.users.get_preferences("nobody") == Preferences()


async def test_preferences_round_trip(store: Store) -> None:
    prefs = Preferences.model_validate(
        {"default": {"push": True, "email": True, "sms": False}, "agents": {"batch-agent": {"email": False}}}
    )
    await store.users.put_preferences("alice", prefs)
    assert await store.users.get_preferences("alice") == prefs
    assert await store.users.get_preferences("bob") == Preferences()


async def test_put_preferences_twice_replaces(store: Store) -> None:
    await store.users.put_preferences(
        "alice", Preferences.model_validate({"default": {"sms": True}, "agents": {"a": {}}})
    )
    second = Preferences.model_validate({"default": {"email": False}})
    await store.users.put_preferences("alice", second)
    got = await store.users.get_preferences("alice")
    assert got == second
    assert got.default.sms is None
    assert got.agents == {}


async def test_contact_none_when_missing(store: Store) -> None:
    assert await store.users.get_contact("nobody") is None


async def test_contact_round_trip_and_replace(store: Store) -> None:
    contact = Contact(email="alice@example.com", phone="+14155550100", webhook_url="https://hooks.example.com/a")
    await store.users.put_contact("alice", contact)
    assert await store.users.get_contact("alice") == contact
    await store.users.put_contact("alice", Contact(email="new@example.com"))
    assert await store.users.get_contact("alice") == Contact(email="new@example.com")
    assert await store.users.get_contact("bob") is None


# --- dedup keys ----------------------------------------------------------------------------------


async def test_first_claimer_owns_the_key(store: Store) -> None:
    assert await store.notifications.claim_dedup_key("k", "n1", WINDOW, now=NOW) == "n1"


async def test_second_claimer_gets_the_first_owner(store: Store) -> None:
    await store.notifications.claim_dedup_key("k", "n1", WINDOW, now=NOW)
    assert await store.notifications.claim_dedup_key("k", "n2", WINDOW, now=NOW + 1) == "n1"
    assert await store.notifications.claim_dedup_key("k", "n3", WINDOW, now=NOW + WINDOW - 1) == "n1"


async def test_owner_claiming_again_still_owns(store: Store) -> None:
    await store.notifications.claim_dedup_key("k", "n1", WINDOW, now=NOW)
    await store.notifications.claim_dedup_key("k", "n2", WINDOW, now=NOW + 1)
    assert await store.notifications.claim_dedup_key("k", "n1", WINDOW, now=NOW + 2) == "n1"


async def test_keys_are_independent(store: Store) -> None:
    await store.notifications.claim_dedup_key("k1", "n1", WINDOW, now=NOW)
    assert await store.notifications.claim_dedup_key("k2", "n2", WINDOW, now=NOW) == "n2"


async def test_new_claimer_takes_over_after_the_window(store: Store) -> None:
    await store.notifications.claim_dedup_key("k", "n1", WINDOW, now=NOW)
    assert await store.notifications.claim_dedup_key("k", "n2", WINDOW, now=NOW + WINDOW) == "n2"
    # n2 now owns it for a fresh window
    assert await store.notifications.claim_dedup_key("k", "n3", WINDOW, now=NOW + WINDOW + 1) == "n2"
    assert await store.notifications.claim_dedup_key("k", "n1", WINDOW, now=NOW + WINDOW + 2) == "n2"
    assert await store.notifications.claim_dedup_key("k", "n3", WINDOW, now=NOW + 2 * WINDOW) == "n3"


async def test_claim_without_now_uses_the_clock(store: Store) -> None:
    assert await store.notifications.claim_dedup_key("k", "n1", WINDOW) == "n1"
    assert await store.notifications.claim_dedup_key("k", "n2", WINDOW) == "n1"


async def test_concurrent_claims_agree_on_one_owner(store: Store) -> None:
    ids = [f"n{i}" for i in range(20)]
    owners = await asyncio.gather(*(store.notifications.claim_dedup_key("hot", i, WINDOW, now=NOW) for i in ids))
    assert len(set(owners)) == 1
    assert owners[0] in ids
    # and the stored owner is the one they all saw
    assert await store.notifications.claim_dedup_key("hot", "late", WINDOW, now=NOW + 1) == owners[0]


async def test_purge_removes_only_expired_keys(store: Store) -> None:
    await store.notifications.claim_dedup_key("old", "n1", 10, now=NOW)
    await store.notifications.claim_dedup_key("edge", "n2", 20, now=NOW)
    await store.notifications.claim_dedup_key("fresh", "n3", WINDOW, now=NOW)
    assert await store.notifications.purge_dedup_keys(now=NOW + 20) == 2
    assert await store.notifications.purge_dedup_keys(now=NOW + 20) == 0
    # the live key still has its owner, the purged ones are free again
    assert await store.notifications.claim_dedup_key("fresh", "x", WINDOW, now=NOW + 21) == "n3"
    assert await store.notifications.claim_dedup_key("old", "y", WINDOW, now=NOW + 21) == "y"


# --- delivery log --------------------------------------------------------------------------------


def attempt(
    n: int,
    result: ChannelStatus,
    *,
    notification_id: str = "n1",
    channel: ChannelName = ChannelName.email,
    started_at: datetime | None = None,
    **kw: object,
) -> DeliveryAttempt:
    started = started_at or datetime(2024, 5, 1, 12, 0, n, 123456, tzinfo=UTC)
    workflow_id = f"notification/{notification_id}"
    return DeliveryAttempt.model_validate(
        {
            "notification_id": notification_id,
            "workflow_id": workflow_id,
            "channel": channel,
            "attempt": n,
            "idempotency_key": f"{workflow_id}/{channel.value}",
            "result": result,
            "started_at": started,
            "finished_at": started + timedelta(seconds=1),
            **kw,
        }
    )


async def test_attempts_round_trip_in_order(store: Store) -> None:
    first = attempt(1, ChannelStatus.failed, error_type="TransientDeliveryError", error="503 from provider")
    second = attempt(2, ChannelStatus.delivered, provider_message_id="msg-1")
    other = attempt(1, ChannelStatus.delivered, notification_id="n2")
    for a in (first, second, other):
        await store.notifications.record_attempt(a)
    assert await store.notifications.attempts("n1") == [first, second]
    assert await store.notifications.attempts("n2") == [other]
    assert await store.notifications.attempts("missing") == []


async def test_attempt_timestamps_come_back_utc_aware(store: Store) -> None:
    await store.notifications.record_attempt(attempt(1, ChannelStatus.delivered))
    (got,) = await store.notifications.attempts("n1")
    for ts in (got.started_at, got.finished_at):
        assert ts.tzinfo is not None
        assert ts.utcoffset() == timedelta(0)
    assert got.started_at == datetime(2024, 5, 1, 12, 0, 1, 123456, tzinfo=UTC)


async def test_attempt_timestamp_in_another_zone_keeps_its_instant(store: Store) -> None:
    started = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC
    await store.notifications.record_attempt(attempt(1, ChannelStatus.delivered, started_at=started))
    (got,) = await store.notifications.attempts("n1")
    assert got.started_at == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert got.started_at.utcoffset() == timedelta(0)


async def test_find_delivered_ignores_failed_attempts(store: Store) -> None:
    key = "notification/n1/email"
    await store.notifications.record_attempt(attempt(1, ChannelStatus.failed, error_type="TransientDeliveryError"))
    assert await store.notifications.find_delivered(key) is None
    delivered = attempt(2, ChannelStatus.delivered, provider_message_id="msg-1")
    await store.notifications.record_attempt(delivered)
    await store.notifications.record_attempt(attempt(3, ChannelStatus.failed))
    found = await store.notifications.find_delivered(key)
    assert found == delivered
    assert found is not None and found.started_at.utcoffset() == timedelta(0)


async def test_find_delivered_is_per_idempotency_key(store: Store) -> None:
    await store.notifications.record_attempt(attempt(1, ChannelStatus.delivered, channel=ChannelName.push))
    assert await store.notifications.find_delivered("notification/n1/push") is not None
    assert await store.notifications.find_delivered("notification/n1/email") is None
    assert await store.notifications.find_delivered("notification/n2/push") is None


async def test_delivery_context_reads_the_logged_success_and_the_contact_together(store: Store) -> None:
    assert await store.notifications.delivery_context("notification/n1/email", "alice") == (None, None)
    await store.users.put_contact("alice", Contact(email="alice@example.com"))
    await store.notifications.record_attempt(attempt(1, ChannelStatus.failed))
    assert await store.notifications.delivery_context("notification/n1/email", "alice") == (
        None,
        Contact(email="alice@example.com"),
    )
    delivered = attempt(2, ChannelStatus.delivered, provider_message_id="msg-1")
    await store.notifications.record_attempt(delivered)
    assert await store.notifications.delivery_context("notification/n1/email", "alice") == (
        delivered,
        Contact(email="alice@example.com"),
    )
    assert await store.notifications.delivery_context("notification/n1/email", "bob") == (delivered, None)


# --- units of work -------------------------------------------------------------------------------


async def test_a_write_that_raises_is_rolled_back(store: Store) -> None:
    def half_then_fail(conn: sa.Connection) -> None:
        conn.execute(sa.insert(schema.versions).values(name="half", version=1))
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        await store.write(half_then_fail)
    assert (
        await store.read(
            lambda conn: conn.scalar(sa.select(schema.versions.c.version).where(schema.versions.c.name == "half"))
        )
        is None
    )


async def test_concurrent_units_of_work_each_see_their_own_statements(store: Store) -> None:
    async def bump(n: int) -> int:
        await store.users.put_preferences(f"user-{n}", Preferences())
        return n

    assert sorted(await asyncio.gather(*(bump(n) for n in range(20)))) == list(range(20))
    count = await store.read(lambda conn: conn.scalar(sa.select(sa.func.count()).select_from(schema.preferences)))
    assert count == 20


async def test_an_in_memory_sqlite_store_is_refused_with_what_to_do() -> None:
    with pytest.raises(ValueError, match="give the database a file path"):
        await Store.open("sqlite+aiosqlite:///:memory:")


# --- outcomes and ops alerts ---------------------------------------------------------------------


def outcome(status: NotificationStatus, **channels: ChannelResult) -> NotificationOutcome:
    return NotificationOutcome(
        notification_id="n1",
        workflow_id="notification/n1",
        agent_id="batch-agent",
        user_id="alice",
        priority=Priority.critical,
        status=status,
        channels={ChannelName(k): v for k, v in channels.items()},
    )


async def test_outcome_missing_is_none(store: Store) -> None:
    assert await store.notifications.get_outcome("missing") is None


async def test_outcome_round_trip_and_replace(store: Store) -> None:
    pending = outcome(NotificationStatus.pending, push=ChannelResult(channel=ChannelName.push))
    await store.notifications.record_outcome(pending)
    assert await store.notifications.get_outcome("n1") == pending

    final = outcome(
        NotificationStatus.unconfirmed,
        push=ChannelResult(channel=ChannelName.push, status=ChannelStatus.delivered, attempt_count=1),
        sms=ChannelResult(
            channel=ChannelName.sms,
            status=ChannelStatus.failed,
            attempt_count=4,
            error_type="TransientDeliveryError",
            escalation=True,
        ),
    )
    final.ops_alert = "critical alert confirmed on 1 of 2 channels"
    await store.notifications.record_outcome(final)
    assert await store.notifications.get_outcome("n1") == final
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT status FROM notifications WHERE notification_id = 'n1'"))).all()
    assert [r[0] for r in rows] == ["unconfirmed"]


async def test_ops_alert_recorded_once_per_notification_and_kind(store: Store) -> None:
    await store.notifications.record_ops_alert("n1", "unconfirmed", "first message")
    await store.notifications.record_ops_alert("n1", "unconfirmed", "retried message")
    await store.notifications.record_ops_alert("n1", "other-kind", "another")
    await store.notifications.record_ops_alert("n2", "unconfirmed", "for n2")
    alerts = await store.notifications.ops_alerts("n1")
    assert sorted((a["kind"], a["message"]) for a in alerts) == [
        ("other-kind", "another"),
        ("unconfirmed", "first message"),
    ]
    assert [(a["kind"], a["message"]) for a in await store.notifications.ops_alerts("n2")] == [
        ("unconfirmed", "for n2")
    ]
    assert await store.notifications.ops_alerts("n3") == []


# --- what providers say, bounded; refusals marked in one statement --------------------------------


async def test_concurrent_refusals_of_the_phone_and_the_webhook_both_stay(store: Store) -> None:
    """reject_contact used to read the contact and write it back whole: a phone refusal and a webhook refusal at
    the same moment each wrote the document they had read, and the later write dropped the earlier mark."""
    users = [f"both-{i}" for i in range(12)]
    for user in users:
        await store.users.put_contact(user, Contact(phone="+14155550100", webhook_url="https://hooks.example.com/h"))
    await asyncio.gather(
        *(
            call
            for user in users
            for call in (
                store.users.reject_contact(user, "phone_rejected", "twilio error 21610"),
                store.users.reject_contact(user, "webhook_disabled", "410 Gone"),
            )
        )
    )
    for user in users:
        contact = await store.users.get_contact(user)
        assert contact is not None
        assert (contact.phone_rejected, contact.webhook_disabled) == ("twilio error 21610", "410 Gone"), user
        assert (contact.phone, contact.webhook_url) == ("+14155550100", "https://hooks.example.com/h")
    # A user with no contact saved gets none made up.
    await store.users.reject_contact("nobody-saved", "phone_rejected", "twilio error 21211")
    assert await store.users.get_contact("nobody-saved") is None


async def test_a_providers_long_message_id_and_error_are_bounded_and_still_match(store: Store) -> None:
    """A provider_message_id over the column's 256 characters (a webhook receiver's x-message-id) used to fail the
    delivery log's write on PostgreSQL after the send had succeeded; the attempt was retried and ended failed.
    Now the id is cut and hashed to fit, the same way every time, so a later status report still finds it."""
    long_id = "rcv-" + "x" * 600
    other_long_id = "rcv-" + "x" * 599 + "y"  # the same first 256 characters: must not collide
    await store.notifications.record_attempt(attempt(1, ChannelStatus.delivered, provider_message_id=long_id))
    await store.notifications.record_attempt(
        attempt(
            1,
            ChannelStatus.failed,
            notification_id="n2",
            provider_message_id=other_long_id,
            error="e" * 50_000,
            error_type="T" * 300,
        )
    )
    [logged] = await store.notifications.attempts("n1")
    [failed] = await store.notifications.attempts("n2")
    assert logged.provider_message_id is not None and len(logged.provider_message_id) <= 256
    assert failed.provider_message_id is not None and len(failed.provider_message_id) <= 256
    assert logged.provider_message_id != failed.provider_message_id
    assert logged.provider_message_id.startswith("rcv-xxx")
    assert failed.error is not None and len(failed.error) <= 2000
    assert failed.error_type is not None and len(failed.error_type) <= 64
    # A provider's later report on the long id finds its attempt, with an overlong status and code bounded.
    assert await store.notifications.record_provider_status(long_id, "delivered-" + "z" * 100, "3" * 40)
    [reported] = await store.notifications.attempts("n1")
    assert reported.provider_status is not None and len(reported.provider_status) <= 32
    assert reported.provider_error_code is not None and len(reported.provider_error_code) <= 16


async def test_a_webhook_receivers_long_message_id_delivers_once_and_is_logged(
    store: Store, fake_http: FakeHTTPServer
) -> None:
    """End to end on each store: the receiver answers 200 with a 300-character x-message-id. The attempt used to
    fail on PostgreSQL when it was logged (value too long for varchar(256)), after the receiver had the message."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    path = f"/hook/{uuid.uuid4().hex[:8]}"
    url = fake_http.script(path, (200, {"x-message-id": "m" * 300}))
    await store.users.put_contact(user, Contact(webhook_url=url))
    channel = WebhookChannel(WEBHOOK_SECRET, book=store.users, timeout=2.0, allow_private=True)
    n = AgentNotification(agent_id="monitor", user_id=user, title="Disk full")
    request = DeliveryRequest(notification=n, channel=ChannelName.webhook, workflow_id=n.workflow_id)
    try:
        receipt = await DeliveryService(store, {ChannelName.webhook: channel}).deliver(request, 1)
    finally:
        await channel.aclose()
    [logged] = await store.notifications.attempts(n.notification_id)
    assert logged.result is ChannelStatus.delivered
    assert logged.provider_message_id == receipt.provider_message_id
    assert receipt.provider_message_id is not None and len(receipt.provider_message_id) <= 256
    assert len(fake_http.received(path)) == 1


# --- subscriptions ---------------------------------------------------------------------------------------------


async def test_subscriptions_round_trip_narrow_and_mark(store: Store) -> None:
    from herald.domain.subscriptions import saved
    from herald.models import SubscriptionEventType, SubscriptionInput, utcnow

    now = utcnow()
    kinds = [SubscriptionEventType.failed, SubscriptionEventType.heartbeat_missed]
    mine = saved(
        "mine", SubscriptionInput(url="https://a.example/h", events=kinds, agent_id="deploy-bot"), "admin", now, None
    )
    every = saved("every", SubscriptionInput(url="https://b.example/h", events=kinds), "cli", now, None)
    other = saved("other", SubscriptionInput(url="https://c.example/h", events=kinds, agent_id="x"), "admin", now, None)
    for s in (mine, every, other):
        await store.subscriptions.put_subscription(s)
    assert await store.subscriptions.get_subscription("mine") == mine
    assert [s.name for s in await store.subscriptions.list_subscriptions()] == ["every", "mine", "other"]
    assert [s.name for s in await store.subscriptions.list_subscriptions(agent_id="deploy-bot")] == ["mine"]
    assert [s.name for s in await store.subscriptions.candidates("deploy-bot")] == ["every", "mine"]
    assert [s.name for s in await store.subscriptions.candidates(None)] == ["every"]

    failed = await store.subscriptions.mark("mine", failures=1, last_error="boom", disable=False, now=now)
    assert failed is not None and failed.enabled and failed.failures == 1 and failed.last_error == "boom"
    off = await store.subscriptions.mark("mine", failures=2, last_error="boom again", disable=True, now=now)
    assert off is not None and not off.enabled and off.disabled_at == now and off.last_error == "boom again"
    assert [s.name for s in await store.subscriptions.candidates("deploy-bot")] == ["every"], "a disabled one gets none"

    again = saved(
        "mine", SubscriptionInput(url="https://a.example/h2", events=kinds, agent_id="deploy-bot"), "admin", now, off
    )
    await store.subscriptions.put_subscription(again)
    assert await store.subscriptions.get_subscription("mine") == again and again.enabled
    assert await store.subscriptions.delete_subscription("mine")
    assert not await store.subscriptions.delete_subscription("mine")
    assert await store.subscriptions.mark("mine", failures=1, last_error=None, disable=False, now=now) is None


# --- groups --------------------------------------------------------------------------------------------------------


async def test_groups_round_trip_list_members_and_delete(store: Store) -> None:
    from herald.models import Group

    made = datetime(2026, 1, 1, tzinfo=UTC)
    later = made + timedelta(hours=1)
    assert await store.groups.members("sre") is None and await store.groups.get("sre") is None
    sre = Group(name="sre", members=["grace", "ada"], created_at=made, updated_at=made)
    assert await store.groups.put(sre) == sre
    await store.groups.put(Group(name="db", members=["edgar"], created_at=made, updated_at=made))
    assert await store.groups.get("sre") == sre
    assert await store.groups.members("sre") == ["grace", "ada"]

    # Saved again: new members, the first created_at kept.
    again = await store.groups.put(Group(name="sre", members=["ada"], created_at=later, updated_at=later))
    assert again == Group(name="sre", members=["ada"], created_at=made, updated_at=later)
    assert await store.groups.get("sre") == again
    assert [g.name for g in await store.groups.list()] == ["db", "sre"]

    assert await store.groups.delete("sre") is True
    assert await store.groups.delete("sre") is False
    assert await store.groups.members("sre") is None
    assert [g.name for g in await store.groups.list()] == ["db"]
