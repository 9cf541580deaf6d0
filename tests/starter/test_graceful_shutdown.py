"""`herald worker` on SIGTERM: stops polling, lets the send in flight finish and log itself, then exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.models import AgentNotification, ChannelName, ChannelStatus, Contact, NotificationStatus
from starter import HeraldClient
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, make_settings
from tests.fakes.http import read_body, start_fake
from tests.starter.cli import HERALD, clean_env
from worker import create_worker, open_runtime

SHUTDOWN_BEGUN = "Beginning worker shutdown"


class SlowReceiver:
    """A webhook receiver that holds each request until the test releases it: a send caught mid-flight."""

    def __init__(self) -> None:
        self.received = asyncio.Event()
        self.release = asyncio.Event()
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        self.requests += 1
        self.received.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def read_until(stream: asyncio.StreamReader, needle: str) -> dict[str, Any]:
    """The first JSON log line whose message contains `needle`."""
    while line := await stream.readline():
        text = line.decode().strip()
        if needle in text:
            entry: dict[str, Any] = json.loads(text)
            return entry
    raise AssertionError(f"the worker's log ended without {needle!r}")


async def test_sigterm_lets_the_delivery_in_flight_finish(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    receiver = SlowReceiver()
    server, serving, port = await start_fake(receiver)
    home, queue = tmp_path / "home", f"shutdown-{uuid.uuid4().hex[:8]}"
    store = await Store.open(f"sqlite+aiosqlite:///{home / 'herald.db'}")
    await store.users.put_contact("ada", Contact(webhook_url=f"http://127.0.0.1:{port}/hook"))
    env = clean_env(
        HERALD_HOME=str(home),
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=queue,
        HERALD_RETENTION_SCHEDULE_ID=f"retention-{queue}",
        HERALD_WEBHOOK_SECRET=WEBHOOK_SECRET,
        HERALD_ALLOW_PRIVATE_WEBHOOKS="true",
        HERALD_SHUTDOWN_GRACE_SECONDS="30",
    )
    worker = await asyncio.create_subprocess_exec(
        HERALD, "worker", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert worker.stderr is not None
    try:
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
        note = AgentNotification(agent_id="a", user_id="ada", title="t", channels=[ChannelName.webhook])
        handle = await client.notify(note)
        await asyncio.wait_for(receiver.received.wait(), 60)  # the send is under way

        worker.send_signal(signal.SIGTERM)
        begun = await asyncio.wait_for(read_until(worker.stderr, SHUTDOWN_BEGUN), 30)
        assert begun["level"] == "INFO"  # `herald worker` logs JSON lines
        receiver.release.set()  # the receiver answers only once the worker is shutting down
        drained = asyncio.create_task(worker.stderr.read())
        assert await asyncio.wait_for(worker.wait(), 60) == 0
        await drained

        (attempt,) = await store.notifications.attempts(note.notification_id)
        assert (attempt.attempt, attempt.result) == (1, ChannelStatus.delivered)

        # Another worker picks the workflow up: the logged success is not sent again.
        settings = make_settings(home, task_queue=queue)
        async with open_runtime(settings) as runtime, create_worker(temporal_env.client, runtime, queue):
            outcome = await asyncio.wait_for(handle.outcome(), 30)
        assert outcome.status is NotificationStatus.delivered
        assert outcome.channels[ChannelName.webhook].attempt_count == 1
        assert receiver.requests == 1
    finally:
        receiver.release.set()
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        await store.close()
        server.should_exit = True
        await serving
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
