"""Push across processes through the real Redis on 127.0.0.1:6379: two API apps (each its own hub and relay,
standing in for two API processes) and one RedisPushPublisher (the worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from websockets.asyncio.client import connect

from herald.adapters.channels.push import PushChannel, PushHub
from herald.adapters.channels.redis_push import (
    RedisPushPublisher,
    RedisPushRelay,
    Reply,
    decode_envelope,
    decode_reply,
    encode_ack,
    encode_envelope,
    encode_not_offered,
    unreached,
)
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.domain.errors import PushNotAcked, RecipientNotConnected, TransientDeliveryError
from herald.services.auth import issue_token
from tests.channels.test_websocket import recv_json, serve, wait_until_disconnected
from tests.conftest import make_settings

REDIS_URL = os.environ.get("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FRAME = {"type": "notification", "notification_id": "n-1", "title": "Deploy finished"}


@pytest.fixture
async def redis_url() -> str:
    """Redis on this machine; skipped where there is none, but a failure in CI (which must have it)."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}) and CI is set")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    finally:
        await client.aclose()
    return REDIS_URL


@pytest.fixture
def prefix() -> str:
    return f"herald-test:{uuid.uuid4().hex}"


@dataclass
class ApiProcess:
    hub: PushHub
    relay: RedisPushRelay
    port: int

    def url(self, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws?token={token}"


@contextlib.asynccontextmanager
async def api_process(tmp_path: Path, store: Store, redis_url: str, prefix: str) -> AsyncIterator[ApiProcess]:
    hub = PushHub(queue_size=1)
    relay = RedisPushRelay(hub, redis_url, prefix=prefix)
    app = create_app(make_settings(tmp_path), store=store, hub=hub)
    await relay.start()
    try:
        async with serve(app) as port:
            yield ApiProcess(hub, relay, port)
    finally:
        await relay.stop()


@dataclass
class Cluster:
    a: ApiProcess
    b: ApiProcess
    worker: RedisPushPublisher
    redis: Redis
    prefix: str

    async def subscribers(self, user_id: str) -> int:
        counts = await self.redis.pubsub_numsub(f"{self.prefix}:user:{user_id}")
        return int(counts[0][1])


@pytest.fixture
async def cluster(tmp_path: Path, store: Store, redis_url: str, prefix: str) -> AsyncIterator[Cluster]:
    worker = RedisPushPublisher(redis_url, ack_timeout=0.5, prefix=prefix)
    redis = Redis.from_url(redis_url)
    try:
        async with (
            api_process(tmp_path / "a", store, redis_url, prefix) as a,
            api_process(tmp_path / "b", store, redis_url, prefix) as b,
        ):
            yield Cluster(a, b, worker, redis, prefix)
    finally:
        await worker.aclose()
        await redis.aclose()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


# --- the wire format (pure) ------------------------------------------------------------------------------


def test_envelope_round_trip_and_foreign_messages() -> None:
    assert decode_envelope(encode_envelope("n-1", FRAME)) == ("n-1", FRAME)
    assert decode_envelope(b"not json") is None
    assert decode_envelope(json.dumps({"notification_id": "n-1"})) is None
    assert decode_envelope(json.dumps({"notification_id": "", "frame": {}})) is None
    assert decode_envelope(json.dumps([1, 2])) is None


def test_a_reply_counts_only_for_its_own_user_and_notification() -> None:
    assert decode_reply(encode_ack("ada", "n-1", "conn-7"), "ada", "n-1") == Reply(connection_id="conn-7")
    # `ada:x` + `1` and `ada` + `x:1` share a channel name; the body tells them apart.
    assert decode_reply(encode_ack("ada:x", "1", "conn-7"), "ada", "x:1") is None
    assert decode_reply(encode_ack("ada", "n-2", "conn-7"), "ada", "n-1") is None
    assert decode_reply(encode_not_offered("ada", "n-1", "queue_full"), "ada", "n-1") == Reply(reason="queue_full")
    assert decode_reply(b"\xff", "ada", "n-1") is None


def test_unreached_waits_for_every_receiver_then_names_the_cause() -> None:
    assert unreached(["queue_full"], 2) is None
    assert isinstance(unreached(["not_connected", "not_connected"], 2), RecipientNotConnected)
    error = unreached(["not_connected", "queue_full"], 2)
    assert isinstance(error, PushNotAcked) and "full send queue" in str(error)


# --- across processes ------------------------------------------------------------------------------------


async def test_worker_reaches_the_user_on_another_process_and_gets_its_ack(cluster: Cluster, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(cluster.b.url(token)) as ws:
        ready = await recv_json(ws)
        assert ready["type"] == "ready"
        # "ready" is truthful: B's subscription for ada is in place already, and only B's.
        assert await cluster.subscribers("ada") == 1
        publish = asyncio.create_task(cluster.worker.publish("ada", "n-1", FRAME))
        assert await recv_json(ws) == FRAME
        await ws.send(json.dumps({"type": "ack", "notification_id": "n-1"}))
        assert await publish == ready["connection_id"]
    assert cluster.a.hub.users() == []


class HoldingProxy:
    """A loopback TCP proxy to Redis that can hold back what its clients send, as a slow Redis link would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.passing = asyncio.Event()
        self.passing.set()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, upstream_writer]
        await asyncio.gather(
            self._pipe(reader, upstream_writer, held=True),
            self._pipe(upstream_reader, writer, held=False),
            return_exceptions=True,
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, held: bool) -> None:
        try:
            while data := await reader.read(65536):
                if held:
                    await self.passing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()


async def test_ready_waits_until_the_relay_subscription_is_confirmed(
    tmp_path: Path, store: Store, redis_url: str, prefix: str
) -> None:
    token = await issue_token(store, "user", "ada")
    target = urlsplit(redis_url)
    proxy = HoldingProxy((target.hostname or "127.0.0.1", target.port or 6379))
    port = await proxy.start()
    redis = Redis.from_url(redis_url)
    try:
        async with api_process(tmp_path, store, f"redis://127.0.0.1:{port}/0", prefix) as api:
            proxy.passing.clear()  # the relay's SUBSCRIBE will not reach Redis until we say so
            async with connect(api.url(token)) as ws:
                with pytest.raises(TimeoutError):  # no "ready" while the subscription is unconfirmed
                    await asyncio.wait_for(ws.recv(), 0.3)
                assert (await redis.pubsub_numsub(f"{prefix}:user:ada"))[0][1] == 0
                proxy.passing.set()
                assert (await recv_json(ws))["type"] == "ready"
                assert (await redis.pubsub_numsub(f"{prefix}:user:ada"))[0][1] == 1
    finally:
        proxy.passing.set()
        await proxy.stop()
        await redis.aclose()


async def test_connected_nowhere_is_recipient_not_connected(cluster: Cluster) -> None:
    with pytest.raises(RecipientNotConnected):
        await cluster.worker.publish("ada", "n-1", FRAME)


async def test_connected_without_an_ack_is_push_not_acked(cluster: Cluster, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(cluster.b.url(token)) as ws:
        await recv_json(ws)
        publish = asyncio.create_task(cluster.worker.publish("ada", "n-1", FRAME))
        assert await recv_json(ws) == FRAME, "delivered to the client, which does not ack"
        with pytest.raises(PushNotAcked, match="no ack"):
            await publish


async def test_after_disconnect_the_user_is_not_connected_again(cluster: Cluster, store: Store) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(cluster.b.url(token)) as ws:
        await recv_json(ws)
    await wait_until_disconnected(cluster.b.hub, "ada")
    # Whether or not B's UNSUBSCRIBE has landed yet, the worker learns the user is gone.
    with pytest.raises(RecipientNotConnected):
        await cluster.worker.publish("ada", "n-1", FRAME)
    for _ in range(500):
        if await cluster.subscribers("ada") == 0:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("B is still subscribed for a user with no connection")


async def test_user_on_two_processes_gets_the_frame_on_both_and_the_first_ack_wins(
    cluster: Cluster, store: Store
) -> None:
    token = await issue_token(store, "user", "ada")
    async with connect(cluster.a.url(token)) as on_a, connect(cluster.b.url(token)) as on_b:
        await recv_json(on_a)
        ready_b = await recv_json(on_b)
        assert await cluster.subscribers("ada") == 2
        publish = asyncio.create_task(cluster.worker.publish("ada", "n-1", FRAME))
        assert await recv_json(on_a) == FRAME
        assert await recv_json(on_b) == FRAME
        await on_b.send(json.dumps({"type": "ack", "notification_id": "n-1"}))
        assert await publish == ready_b["connection_id"]


async def test_a_full_queue_on_the_only_process_fails_fast_as_not_acked(cluster: Cluster, redis_url: str) -> None:
    patient = RedisPushPublisher(redis_url, ack_timeout=30, prefix=cluster.prefix)
    try:
        with cluster.b.hub.connect("ada") as connection:  # a client that never reads
            await connection.registered()
            assert cluster.b.hub.offer("ada", FRAME) == 1  # its one-frame queue is now full
            with pytest.raises(PushNotAcked, match="full send queue"):
                await patient.publish("ada", "n-2", {**FRAME, "notification_id": "n-2"})
    finally:
        await patient.aclose()


async def test_acks_are_forwarded_only_for_frames_the_relay_offered(cluster: Cluster) -> None:
    with cluster.b.hub.connect("ada") as connection:
        await connection.registered()
        assert connection.ack("never-sent") is False


async def test_push_channel_closes_its_redis_publisher(redis_url: str, prefix: str) -> None:
    """Closing the channel closes the publisher's Redis connection, as Redis itself sees it.

    It used to close the channel twice and assert nothing, so a channel that leaked its connection passed.
    """
    publisher = RedisPushPublisher(redis_url, prefix=prefix)
    channel = PushChannel(publisher)
    connection_id = await publisher._redis.client_id()  # the publisher's own pooled connection
    observer = Redis.from_url(redis_url)
    try:
        assert str(connection_id) in str(await observer.execute_command("CLIENT", "LIST", "ID", connection_id))
        await channel.aclose()
        for _ in range(50):  # the server drops the client once it reads the close
            if not await observer.execute_command("CLIENT", "LIST", "ID", connection_id):
                break
            await asyncio.sleep(0.02)
        assert not await observer.execute_command("CLIENT", "LIST", "ID", connection_id)
        await channel.aclose()  # closing twice is harmless
    finally:
        await observer.aclose()


# --- the app's lifespan ----------------------------------------------------------------------------------


async def test_the_app_runs_the_relay_while_it_serves(tmp_path: Path, store: Store, redis_url: str) -> None:
    """With HERALD_REDIS_URL set the API relays with the default prefix; a unique user keeps runs apart."""
    user = f"user-{uuid.uuid4().hex}"
    token = await issue_token(store, "user", user)
    hub = PushHub()
    app = create_app(make_settings(tmp_path, redis_url=redis_url), store=store, hub=hub)
    worker = RedisPushPublisher(redis_url, ack_timeout=5)
    redis = Redis.from_url(redis_url)
    try:
        async with serve(app, lifespan="on") as port:
            async with connect(f"ws://127.0.0.1:{port}/v1/ws?token={token}") as ws:
                ready = await recv_json(ws)
                publish = asyncio.create_task(worker.publish(user, "n-1", FRAME))
                assert await recv_json(ws) == FRAME
                await ws.send(json.dumps({"type": "ack", "notification_id": "n-1"}))
                assert await publish == ready["connection_id"]
        # Shut down: the relay no longer follows the hub, so a connection here is registered at once and
        # subscribes nothing (a relay still attached would make `registered` wait for its SUBSCRIBE).
        with hub.connect(user) as connection:
            await connection.registered()
            assert (await redis.pubsub_numsub(f"herald:push:user:{user}"))[0][1] == 0
            with pytest.raises(RecipientNotConnected):
                await worker.publish(user, "n-2", FRAME)
    finally:
        await worker.aclose()
        await redis.aclose()


# --- Redis down ------------------------------------------------------------------------------------------


async def test_redis_down_is_a_transient_relay_error() -> None:
    worker = RedisPushPublisher(f"redis://127.0.0.1:{closed_port()}/0", ack_timeout=1)
    try:
        with pytest.raises(TransientDeliveryError) as info:
            await worker.publish("ada", "n-1", FRAME)
    finally:
        await worker.aclose()
    assert info.value.type_name == "PushRelayUnavailable"
    assert info.value.retryable
    assert "127.0.0.1" not in str(info.value)


async def test_a_relay_that_cannot_reach_redis_refuses_to_start() -> None:
    hub = PushHub()
    relay = RedisPushRelay(hub, f"redis://127.0.0.1:{closed_port()}/0")
    with pytest.raises(RuntimeError, match="cannot reach Redis"):
        await relay.start()
    with hub.connect("ada") as connection:
        await connection.registered()  # not observed: the in-process hub works as before
