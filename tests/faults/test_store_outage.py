"""PostgreSQL stopped (immediate shutdown, as a crash) mid-batch and started again: nothing is lost.

The cluster is the test's own (`pg_createcluster` on a free port), never the shared 127.0.0.1:5432. While it
is down, the workflows' store steps and deliveries fail and retry; the API still accepts notifications
(starting one needs Temporal only) and answers what needs the database with a 503 in the error shape;
once it is back, every notification is delivered and recorded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.api.errors import store_outage
from herald.models import AgentNotification, NotificationStatus
from starter import HeraldClient
from tests.conftest import make_settings
from tests.faults.ledger import Ledger, keys, tally
from tests.faults.procs import PostgresCluster, eventually, free_port, herald_env, herald_worker, postgres_cluster
from tests.faults.scenario import (
    CHANNELS,
    FAULT_POLICY,
    batch,
    outcomes,
    provider_env,
    record_result,
    scale,
    seed_contacts,
)

OUTAGE_MARGIN = 2.0  # seconds before the stop in which a send's log write may still have been under way


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[PostgresCluster]:
    directory = tmp_path / "pg"
    directory.mkdir()
    directory.chmod(0o777)  # the non-root path runs the server as this user; the root path ignores it
    async with postgres_cluster(directory) as cluster:
        yield cluster


def assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "retry" in error["message"]
    assert response.headers["retry-after"] == "2"


async def test_postgres_restart_mid_batch_loses_nothing(
    temporal_env: WorkflowEnvironment, ledger: Ledger, postgres: PostgresCluster, tmp_path: Path
) -> None:
    store = await Store.open(postgres.url)
    await seed_contacts(store, ledger)
    queue = f"faults-pg-{uuid.uuid4().hex[:8]}"
    env = herald_env(
        tmp_path / "home",
        temporal_env.client.service_client.config.target_host,
        queue,
        HERALD_DATABASE_URL=postgres.url,
        **provider_env(ledger),
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAULT_POLICY)
    app = create_app(make_settings(tmp_path / "api", database_url=postgres.url), store=store, client=client)
    count = scale(60)
    before, during = batch(count // 2, "before-pg"), batch(count - count // 2, "during-pg")
    notes = before + during
    expected = keys([n.notification_id for n in notes], [c.value for c in CHANNELS])
    preferences = {"default": {"push": False, "email": True}}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald") as api:

            async def post_all(some: list[AgentNotification]) -> None:
                for note in some:
                    response = await api.post("/v1/notifications", json=note.model_dump(mode="json"))
                    assert response.status_code == 202, response.text

            await worker.start()
            await post_all(before)
            await eventually(lambda: ledger.delivered() >= len(expected) // 6, "a third of the first half", 90)
            down_at = time.monotonic()
            await postgres.stop()
            at_stop = ledger.delivered()

            # Down: what needs the database is a 503 to retry; what needs only Temporal still works.
            assert_store_unavailable(await api.put("/v1/users/fault-user-0/preferences", json=preferences))
            assert_store_unavailable(await api.get("/v1/notifications", params={"user_id": "fault-user-0"}))
            health = await api.get("/healthz")
            assert health.status_code == 503 and health.json()["store"].startswith("down")
            await post_all(during)
            await asyncio.sleep(2)  # the outage goes on while the workflows retry

            await postgres.start()
            up_at = time.monotonic()
            assert (await api.put("/v1/users/fault-user-0/preferences", json=preferences)).status_code == 200
            assert (await api.get("/healthz")).status_code == 200
            results = await outcomes(client, notes, timeout=150)
        recorded = [await store.notifications.get_outcome(n.notification_id) for n in notes]
    finally:
        await worker.kill()
        await store.close()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()

    counted = tally(expected, ledger.accepted)
    # A send the provider accepted whose log write met the outage is sent again (at least once). Only sends that
    # passed the log check before the database went down can be: first accepted from just before the stop (a
    # log write in flight) until it was back. Others would be task timeouts on an overloaded machine.
    in_outage = {k for k in counted.duplicates if down_at - OUTAGE_MARGIN <= ledger.first_accepted[k] <= up_at}
    other = len(counted.duplicates) - len(in_outage)
    print(
        f"\nPostgreSQL stopped after {at_stop} of {len(expected)} deliveries: {counted.summary()}\n"
        f"duplicates: {len(in_outage)} first sent while the database was going down or down, {other} otherwise"
    )
    record_result("postgres-stop", counted, first_sent_around_the_outage=len(in_outage), otherwise=other)
    assert counted.lost == [], counted.summary()
    assert counted.unexpected == []
    assert other <= max(3, len(expected) // 20), counted.summary()
    assert {r.status for r in results.values()} == {NotificationStatus.delivered}, [
        (i, r.status, r.channels) for i, r in results.items() if r.status is not NotificationStatus.delivered
    ][:3]
    assert all(o is not None and o.status is NotificationStatus.delivered for o in recorded), "every outcome recorded"


async def test_a_database_nobody_answers_is_a_503_and_only_an_outage_counts_as_one(tmp_path: Path) -> None:
    """Without a cluster: a store whose database refuses connections. Only an outage becomes a 503."""
    from sqlalchemy.ext.asyncio import create_async_engine

    down = Store(create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/postgres"))
    app = create_app(make_settings(tmp_path), store=down)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald") as api:
            assert_store_unavailable(await api.get("/v1/users/ada/preferences"))
            assert_store_unavailable(await api.put("/v1/users/ada/contact", json={"email": "ada@example.com"}))
    finally:
        await down.close()

    assert store_outage(ConnectionRefusedError(111, "refused"))
    assert store_outage(sa_exc.OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert store_outage(sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")))
    assert not store_outage(sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not store_outage(ValueError("a bug"))
