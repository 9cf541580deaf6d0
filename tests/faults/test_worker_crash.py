"""`herald worker` killed with SIGKILL in the middle of a stream of notifications, then started again.

Counted at the providers: every (notification, channel) reaches its provider at least once. Duplicates are
counted and explained: the delivery log is checked before every send and every retry, replay or re-run goes
through that check, so a duplicate needs a send the provider accepted while its attempt never got to log it.
The kill makes exactly those: the sends in flight at that moment (the test measures them). On a machine so
loaded that workflow tasks time out, a re-run local attempt can cut a send short the same way; the test
allows a few of those and says how many it saw.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.models import NotificationStatus
from starter import HeraldClient
from tests.faults.ledger import Ledger, keys, tally
from tests.faults.procs import eventually, herald_env, herald_worker
from tests.faults.scenario import CHANNELS, FAULT_POLICY, batch, outcomes, provider_env, record_result, scale, stream

RATE = 30.0  # notifications a second: a busy agent fleet, not a burst (a burst puts every send in flight at once)


async def unlogged_sends(url: str, accepted: set[str]) -> set[str]:
    """Keys the providers accepted that the delivery log doesn't have as delivered: sends the kill cut off."""
    store = await Store.open(url)
    try:
        return {key for key in accepted if await store.notifications.find_delivered(key) is None}
    finally:
        await store.close()


async def test_sigkill_mid_batch_loses_nothing(
    temporal_env: WorkflowEnvironment, ledger: Ledger, sqlite_url: str, tmp_path: Path
) -> None:
    queue = f"faults-kill-{uuid.uuid4().hex[:8]}"
    env = herald_env(
        tmp_path / "home",
        temporal_env.client.service_client.config.target_host,
        queue,
        HERALD_DATABASE_URL=sqlite_url,
        **provider_env(ledger),
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAULT_POLICY)
    notes = batch(scale(120), "kill")
    expected = keys([n.notification_id for n in notes], [c.value for c in CHANNELS])
    agents: asyncio.Task[None] | None = None
    try:
        await worker.start()
        agents = asyncio.create_task(stream(client, notes, RATE))
        # Kill it a third of the way in: sends in flight, workflows half done, local activities running.
        await eventually(lambda: ledger.delivered() >= len(expected) // 3, "a third of the deliveries", 90)
        await worker.kill()
        await ledger.settled()  # requests the dead worker had already sent are counted before the snapshot
        at_kill = ledger.delivered()
        assert at_kill < len(expected), "the kill came too late to prove anything: scale the batch up"
        unlogged = await unlogged_sends(sqlite_url, set(ledger.accepted))

        await asyncio.sleep(1)  # agents go on submitting; nothing runs them
        await worker.start()
        await agents
        results = await outcomes(client, notes, timeout=120)
    finally:
        if agents is not None and not agents.done():
            agents.cancel()
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()

    counted = tally(expected, ledger.accepted)
    print(
        f"\nworker SIGKILL after {at_kill} of {len(expected)} deliveries, {len(unlogged)} of them accepted by "
        f"the provider but not yet in the delivery log: {counted.summary()}"
    )
    cut_by_kill = len(set(counted.duplicates) & unlogged)
    other = counted.duplicate_sends - cut_by_kill
    print(f"duplicates: {cut_by_kill} sends cut off by the kill, {other} cut off by task timeouts (a loaded machine)")
    record_result("worker-sigkill", counted, cut_off_by_the_kill=cut_by_kill, cut_off_by_task_timeouts=other)
    assert counted.lost == [], counted.summary()
    assert counted.unexpected == []
    assert unlogged <= set(counted.duplicates), "a send the kill cut off is sent again: at least once"
    assert other <= max(3, len(expected) // 20), counted.summary()
    assert {r.status for r in results.values()} == {NotificationStatus.delivered}, [
        (i, r.status) for i, r in results.items() if r.status is not NotificationStatus.delivered
    ]
    store = await Store.open(sqlite_url)
    try:
        recorded = [await store.notifications.get_outcome(n.notification_id) for n in notes]
    finally:
        await store.close()
    assert all(o is not None and o.status is NotificationStatus.delivered for o in recorded), "every outcome recorded"
