"""The Temporal dev server killed with SIGKILL mid-batch and started again on its SQLite file: nothing is lost.

The server is the test's own (not the session's), so killing it disturbs no other test. While it is down
the worker's polls fail and the agents' starts are refused; both retry, and once the server is back every
notification, including those submitted during the outage, reaches a terminal outcome and its providers.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from herald.models import NotificationStatus
from starter import HeraldClient
from tests.faults.ledger import Ledger, keys, tally
from tests.faults.procs import TemporalServer, eventually, herald_env, herald_worker
from tests.faults.scenario import (
    CHANNELS,
    FAULT_POLICY,
    batch,
    connect,
    outcomes,
    provider_env,
    record_result,
    scale,
    submit,
)


async def test_server_sigkill_and_restart_loses_nothing(ledger: Ledger, sqlite_url: str, tmp_path: Path) -> None:
    server = TemporalServer(tmp_path / "temporal")
    server.log.parent.mkdir(parents=True)
    queue = f"faults-server-{uuid.uuid4().hex[:8]}"
    env = herald_env(tmp_path / "home", server.address, queue, HERALD_DATABASE_URL=sqlite_url, **provider_env(ledger))
    worker = herald_worker(tmp_path / "worker.log", env)
    count = scale(80)
    before, during = batch(count // 2, "before"), batch(count - count // 2, "during")
    notes = before + during
    expected = keys([n.notification_id for n in notes], [c.value for c in CHANNELS])
    try:
        await server.start()
        client = HeraldClient(await connect(server.address), queue, FAULT_POLICY)
        await worker.start()
        await submit(client, before)
        await eventually(lambda: ledger.delivered() >= len(expected) // 6, "a sixth of the deliveries", 90)
        await server.kill()
        at_kill = ledger.delivered()
        # Agents keep submitting while the server is down: their starts fail and retry with the same ids.
        submitting = asyncio.create_task(submit(client, during, concurrency=8))
        await asyncio.sleep(2)
        assert not submitting.done(), "no start can succeed while the server is down"
        await server.start()
        await asyncio.wait_for(submitting, 60)
        results = await outcomes(client, notes, timeout=150)
        assert worker.running, f"the worker outlived the outage\n{worker.tail()}"
    finally:
        await worker.kill()
        await server.kill()

    counted = tally(expected, ledger.accepted)
    print(f"\nTemporal SIGKILL after {at_kill} of {len(expected)} deliveries: {counted.summary()}")
    record_result("temporal-sigkill", counted, delivered_before_the_kill=at_kill)
    assert counted.lost == [], counted.summary()
    assert counted.unexpected == []
    # Sends in flight finish and are logged while the server is down (the store is up): a resend needs a
    # send cut off before its log, which only an overloaded machine's task timeouts do here.
    assert counted.duplicate_sends <= max(3, len(expected) // 20), counted.summary()
    assert {r.status for r in results.values()} == {NotificationStatus.delivered}, [
        (i, r.status) for i, r in results.items() if r.status is not NotificationStatus.delivered
    ]
