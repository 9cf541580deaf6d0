"""HeartbeatWorkflow on the real dev server: a missed check-in notifies once, the next ping says it is back,
counted at a webhook receiver; a worker killed with SIGKILL neither loses a deadline nor invents one.

Heartbeats are `heartbeat/<agent_id>/<name>` on the shared dev server, so each test uses an agent of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.models import (
    Contact,
    HeartbeatSpec,
    HeartbeatState,
    HeartbeatStatus,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    heartbeat_workflow_id,
    utcnow,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness, make_settings, quiet_hours_now
from tests.fakes.http import FakeHTTPServer
from tests.faults.procs import eventually, herald_worker, webhook_worker_env
from worker import create_worker, open_runtime

MISSED = b"missed its check-in"
RESUMED = b"checked in again"


async def webhook_user(store: Store, user: str, url: str) -> None:
    """A person reached by webhook alone."""
    await store.users.put_contact(user, Contact(webhook_url=url))
    prefs = {"default": {"push": False, "email": False}}
    await store.users.put_preferences(user, Preferences.model_validate(prefs))


def heartbeat(agent: str, user: str, every: int = 1, grace: int = 1) -> HeartbeatSpec:
    return HeartbeatSpec.model_validate(
        {
            "name": "nightly-backup",
            "agent_id": agent,
            "every_seconds": every,
            "grace_seconds": grace,
            "notify": {"user_id": user, "channels": ["webhook"]},
        }
    )


def sent(fake: FakeHTTPServer, path: str, words: bytes) -> int:
    """Notifications the receiver got with these words, by idempotency key (`webhook-id`): a worker killed mid-send
    sends again under the same key (at least once, README Guarantees), and that is still one notification."""
    return len({r.headers["webhook-id"] for r in fake.received(path) if words in r.body})


async def status_of(client: HeraldClient, agent: str) -> HeartbeatStatus | None:
    found = await client.heartbeats(agent)
    return found[0] if found else None


async def history_count(handle: WorkflowHandle[Any, Any], attributes: str) -> int:
    """Events of one kind in the heartbeat's history (the server's alone: no worker needed)."""
    count = 0
    async for event in handle.fetch_history_events():
        count += event.HasField(attributes)
    return count


async def children_started(handle: WorkflowHandle[Any, Any]) -> int:
    """Notifications the heartbeat started."""
    return await history_count(handle, "start_child_workflow_execution_initiated_event_attributes")


def timer_fired(handle: WorkflowHandle[Any, Any], after: int = 0) -> Callable[[], Awaitable[bool]]:
    """The deadline's timer fired at the server (more than `after` times), whether or not a worker saw it."""

    async def check() -> bool:
        return await history_count(handle, "timer_fired_event_attributes") > after

    return check


async def test_a_missed_check_in_notifies_once_and_the_next_ping_says_it_is_back(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    agent, user = f"backup-{uuid.uuid4().hex[:8]}", f"ops-{uuid.uuid4().hex[:6]}"
    path = f"/heartbeat/{agent}"
    await webhook_user(herald.store, user, fake_http.script(path))
    spec = heartbeat(agent, user)
    await herald.client.set_heartbeat(spec)
    handle = herald.client.temporal.get_workflow_handle(heartbeat_workflow_id(agent, spec.name))
    await eventually(lambda: sent(fake_http, path, MISSED) == 1, "the missed check-in at the receiver", 30)
    missed = await status_of(herald.client, agent)
    assert missed is not None and missed.state is HeartbeatState.missed
    assert missed.missed_at == missed.deadline
    # A longer period while missed changes nothing now; it keeps the resumed heartbeat from missing again mid-test.
    await herald.client.set_heartbeat(heartbeat(agent, user, every=3600))
    pinged = await herald.client.ping(agent, spec.name)
    await eventually(lambda: sent(fake_http, path, RESUMED) == 1, "the check-in again at the receiver", 30)
    back = await status_of(herald.client, agent)
    assert back is not None and back.state is HeartbeatState.up and back.missed_at is None
    assert back.last_ping_at == pinged.pinged_at
    await herald.client.delete_heartbeat(agent, spec.name)
    final = await handle.result()
    assert sent(fake_http, path, MISSED) == 1 and sent(fake_http, path, RESUMED) == 1
    assert await children_started(handle) == 2, "one miss, one resume: nothing else was started"
    # Missed, it waited for a ping alone: one timer before the miss, one after the resume, none between.
    assert await history_count(handle, "timer_started_event_attributes") == 2
    assert HeartbeatStatus.model_validate(final).state is HeartbeatState.up, "its last status"
    [missed_request] = [r for r in fake_http.received(path) if MISSED in r.body]
    assert missed_request.headers["webhook-id"].startswith("notification/")


async def test_a_changed_spec_applies_from_the_last_ping_and_a_ping_in_time_sends_nothing(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    agent, user = f"backup-{uuid.uuid4().hex[:8]}", f"ops-{uuid.uuid4().hex[:6]}"
    path = f"/heartbeat/{agent}"
    await webhook_user(herald.store, user, fake_http.script(path))
    await herald.client.set_heartbeat(heartbeat(agent, user, every=3600, grace=0))
    handle = herald.client.temporal.get_workflow_handle(heartbeat_workflow_id(agent, "nightly-backup"))
    await eventually(lambda: status_of(herald.client, agent), "the heartbeat listed", 30)
    await herald.client.ping(agent, "nightly-backup")
    await herald.client.set_heartbeat(heartbeat(agent, user, every=7200, grace=60))
    status = await handle.query("status", result_type=HeartbeatStatus)
    assert (status.every_seconds, status.grace_seconds, status.state) == (7200, 60, HeartbeatState.up)
    assert (status.deadline - status.last_ping_at).total_seconds() == 7260
    assert status.last_ping_at <= utcnow()
    await herald.client.delete_heartbeat(agent, "nightly-backup")
    await handle.result()
    assert await children_started(handle) == 0 and fake_http.received(path) == []


async def test_a_ping_sent_in_time_while_no_worker_runs_is_in_time(
    temporal_env: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """The worker stops; a ping reaches Temporal before the deadline; the deadline passes (its timer fires at the
    server) before a worker runs again. The new worker counts the ping at the time it was sent: no miss invented."""
    settings = make_settings(tmp_path / "herald")
    queue = f"heartbeat-{uuid.uuid4().hex[:8]}"
    agent, user = f"backup-{uuid.uuid4().hex[:8]}", f"ops-{uuid.uuid4().hex[:6]}"
    path = f"/heartbeat/{agent}"
    client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
    spec = heartbeat(agent, user, every=4, grace=2)
    handle = temporal_env.client.get_workflow_handle(heartbeat_workflow_id(agent, spec.name))
    async with open_runtime(settings) as runtime:
        await webhook_user(runtime.store, user, fake_http.script(path))
        async with create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]):
            await client.set_heartbeat(spec)
            first = await handle.query("status", result_type=HeartbeatStatus)
        # Half the window on, so the ping's own deadline lies well past the first one's.
        await eventually(
            lambda: utcnow() >= first.last_ping_at + (first.deadline - first.last_ping_at) / 2, "mid-window"
        )
        pinged = await client.ping(agent, spec.name)
        assert pinged.pinged_at < first.deadline
        await eventually(timer_fired(handle), "the first deadline's timer at the server", 30)
        async with create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]):
            after = await handle.query("status", result_type=HeartbeatStatus)
            assert after.state is HeartbeatState.up, "the ping was in time"
            assert after.last_ping_at == pinged.pinged_at
            await client.delete_heartbeat(agent, spec.name)
            await handle.result()
    assert await children_started(handle) == 0 and fake_http.received(path) == []


async def test_missed_then_resumed_across_worker_sigkills(
    temporal_env: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """A `herald worker` process is killed with SIGKILL while the heartbeat is up; its deadline passes with no
    worker at all. The next worker sends the miss once. Killed again while missed, with a ping sent meanwhile:
    the next worker sends "checked in again" once, and never the miss a second time."""
    home = tmp_path / "herald"
    settings = make_settings(home)
    queue = f"heartbeat-kill-{uuid.uuid4().hex[:8]}"
    agent, user = f"backup-{uuid.uuid4().hex[:8]}", f"ops-{uuid.uuid4().hex[:6]}"
    path = f"/heartbeat/{agent}"
    env = webhook_worker_env(
        home, temporal_env.client.service_client.config.target_host, queue, settings.resolved_database_url
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
    spec = heartbeat(agent, user, every=1, grace=1)
    handle = temporal_env.client.get_workflow_handle(heartbeat_workflow_id(agent, spec.name))
    try:
        async with open_runtime(settings) as runtime:
            await webhook_user(runtime.store, user, fake_http.script(path))
        await worker.start()
        await client.set_heartbeat(spec)
        # Up, on the worker process: its first task ran (the query waits for a worker to answer it).
        status = await asyncio.wait_for(handle.query("status", result_type=HeartbeatStatus), 120)
        assert status.state is HeartbeatState.up
        await worker.kill()
        await eventually(timer_fired(handle), "the deadline's timer, with no worker running", 30)
        assert fake_http.received(path) == [], "nobody ran to see it yet"
        await worker.start()
        await eventually(lambda: sent(fake_http, path, MISSED) == 1, "the miss, sent by the next worker", 120)
        await worker.kill()
        # Kept by Temporal while no worker runs: a longer period (so the resumed heartbeat can't miss again before
        # the test reads it), then the ping.
        await client.set_heartbeat(heartbeat(agent, user, every=3600))
        pinged = await client.ping(agent, spec.name)
        await worker.start()
        await eventually(lambda: sent(fake_http, path, RESUMED) == 1, "the check-in again", 120)
        back = await asyncio.wait_for(handle.query("status", result_type=HeartbeatStatus), 60)
        await client.delete_heartbeat(agent, spec.name)
        await asyncio.wait_for(handle.result(), 60)
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
    assert back.state is HeartbeatState.up and back.last_ping_at == pinged.pinged_at
    assert sent(fake_http, path, MISSED) == 1 and sent(fake_http, path, RESUMED) == 1
    assert await children_started(handle) == 2


async def test_the_check_in_that_ends_a_miss_resolves_its_alert_still_held_by_quiet_hours(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """A miss's alert that has not gone out yet (quiet hours hold it) never will once the agent is back: the
    check-in resolves it (by the heartbeat), and the receiver gets nothing of it."""
    agent, user = f"backup-{uuid.uuid4().hex[:8]}", f"ops-{uuid.uuid4().hex[:6]}"
    path = f"/heartbeat/{agent}"
    await herald.store.users.put_contact(user, Contact(webhook_url=fake_http.script(path)))
    prefs = {
        "default": {"push": False, "email": False},
        "time_zone": "UTC",
        "quiet_hours": {"window": quiet_hours_now()},
    }
    await herald.store.users.put_preferences(user, Preferences.model_validate(prefs))
    spec = heartbeat(agent, user)
    await herald.client.set_heartbeat(spec)
    temporal = herald.client.temporal
    query = f"WorkflowType = 'NotificationWorkflow' AND HeraldAgentId = '{agent}'"

    async def held_alert() -> str | None:
        async for execution in temporal.list_workflows(query):
            notification_id = execution.id.removeprefix("notification/")
            if (await herald.client.status(notification_id)).held_until is not None:
                return notification_id
        return None

    await eventually(held_alert, "the missed check-in's alert, held by quiet hours", 30)
    missed_id = await held_alert()
    assert missed_id is not None
    await herald.client.set_heartbeat(heartbeat(agent, user, every=3600))
    await herald.client.ping(agent, spec.name)
    handle = temporal.get_workflow_handle(f"notification/{missed_id}", result_type=NotificationOutcome)
    outcome = await asyncio.wait_for(handle.result(), 60)  # held for two hours unless the check-in resolves it
    assert outcome.status is NotificationStatus.resolved
    assert outcome.resolved is not None and outcome.resolved.by == f"heartbeat:{agent}/{spec.name}"
    assert sent(fake_http, path, MISSED) == 0
    async for execution in temporal.list_workflows(query + " AND ExecutionStatus = 'Running'"):
        try:  # 'checked in again' is held too; visibility may still list the resolved alert as running
            await temporal.get_workflow_handle(execution.id).terminate("test over")
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
    await herald.client.delete_heartbeat(agent, spec.name)
