"""Redis stopped under a running worker and API, then started again: push falls back to email, nothing is lost.

The Redis is the test's own (`redis-server` on a free port, no persistence), never the shared 6379. While it
is down the worker cannot reach any WebSocket, so push fails as PushRelayUnavailable after its retries and
the notification falls back to email (the outcome says so); a browser trying to connect is told to come back
(close code 1013, the WebSocket's 503), and the API keeps accepting notifications. Once Redis is back, the
API's relay re-subscribes on its own and push is delivered and acked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect

from herald.api.app import create_app
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryPolicy,
    NotificationStatus,
    RetrySettings,
)
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.channels.test_websocket import closed_with, recv_json, serve
from tests.conftest import make_settings
from tests.faults.ledger import Ledger
from tests.faults.procs import RedisServer, eventually
from worker import create_worker, open_runtime

# Short retries: the push channel gives up on a dead relay within a second and falls back to email.
QUICK = DeliveryPolicy(
    retry=RetrySettings(
        initial_interval_seconds=0.2, backoff_coefficient=2.0, maximum_interval_seconds=0.5, maximum_retries=2
    ),
    send_timeout_seconds=5.0,
)
USER = "redis-fault-user"


@contextlib.asynccontextmanager
async def acking(url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """A browser tab: connect, wait for `ready`, ack every notification frame."""
    frames: list[dict[str, Any]] = []
    async with connect(url) as ws:
        assert (await recv_json(ws))["type"] == "ready"

        async def read(ws: ClientConnection) -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "notification":
                    frames.append(frame)
                    await ws.send(json.dumps({"type": "ack", "notification_id": frame["notification_id"]}))

        reader = asyncio.create_task(read(ws))
        try:
            yield frames
        finally:
            reader.cancel()


def push_note(title: str) -> AgentNotification:
    return AgentNotification(agent_id="fault-agent", user_id=USER, title=title, channels=[ChannelName.push])


async def test_redis_down_push_falls_back_to_email_and_recovers(
    temporal_env: WorkflowEnvironment, ledger: Ledger, tmp_path: Path
) -> None:
    directory = tmp_path / "redis"
    directory.mkdir()
    redis = RedisServer(directory)
    await redis.start()
    settings = make_settings(
        tmp_path / "herald",
        redis_url=redis.url,
        SENDGRID_API_KEY="SG.faults",
        SENDGRID_API_HOST=ledger.sendgrid_host,
        push_ack_timeout_seconds=5.0,
    )
    queue = f"faults-redis-{uuid.uuid4().hex[:8]}"
    probe = Redis.from_url(redis.url)
    try:
        async with (
            open_runtime(settings) as runtime,
            create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
        ):
            store = runtime.store
            await store.users.put_contact(USER, Contact(email="ada@example.com"))
            token = await issue_token(store, "user", USER)
            client = HeraldClient(temporal_env.client, queue, QUICK)
            app = create_app(settings, store=store, client=client)
            async with serve(app, lifespan="on") as port:
                ws_url = f"ws://127.0.0.1:{port}/v1/ws?token={token}"
                async with acking(ws_url) as frames:
                    up = await (await client.notify(push_note("before"))).outcome()
                    assert up.channels[ChannelName.push].status is ChannelStatus.delivered
                    assert len(frames) == 1

                    await redis.kill()
                    down = [await (await client.notify(push_note(f"during {i}"))).outcome() for i in range(3)]
                    for outcome in down:
                        push, email = outcome.channels[ChannelName.push], outcome.channels[ChannelName.email]
                        assert outcome.status is NotificationStatus.delivered
                        assert (push.status, push.error_type) == (ChannelStatus.failed, "PushRelayUnavailable")
                        assert push.attempt_count == 3, "retried before falling back"
                        assert (email.status, email.fallback_for) == (ChannelStatus.delivered, ChannelName.push)
                        assert ledger.accepted[f"notification/{outcome.notification_id}/email"] == 1
                    assert len(frames) == 1, "nothing reached the browser while Redis was down"

                    # A browser of another user (this process follows no channel for them yet) is told to come
                    # back later; the API still takes notifications.
                    late_url = f"ws://127.0.0.1:{port}/v1/ws?token={await issue_token(store, 'user', 'late-user')}"
                    async with connect(late_url) as late:
                        code, reason = await closed_with(late)
                    assert (code, reason) == (1013, "push relay unavailable; retry shortly")
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
                        accepted = await api.post("/v1/notifications", json=push_note("posted").model_dump(mode="json"))
                    assert accepted.status_code == 202, accepted.text
                    posted = await client.get_handle(accepted.json()["notification_id"]).outcome()
                    assert posted.channels[ChannelName.email].status is ChannelStatus.delivered

                    await redis.start()
                    channel = f"herald:push:user:{USER}"
                    await eventually(
                        lambda: _subscribers(probe, channel), "the relay re-subscribing after Redis came back", 30
                    )
                    again = await (await client.notify(push_note("after"))).outcome()
                    assert again.channels[ChannelName.push].status is ChannelStatus.delivered
                    assert ChannelName.email not in again.channels
                    assert [f["title"] for f in frames] == ["before", "after"]
    finally:
        await probe.aclose()
        await redis.kill()


async def _subscribers(redis: Redis, channel: str) -> bool:
    try:
        return int((await redis.pubsub_numsub(channel))[0][1]) > 0
    except (ConnectionError, OSError):
        return False
