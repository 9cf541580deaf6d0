"""Push across processes through Redis pub/sub: workers publish, each API process relays to its own WebSockets.

The worker (RedisPushPublisher) subscribes to the frame's ack channel first, then publishes the frame on the
user's channel. Only API processes with that user connected subscribe to it (RedisPushRelay), so PUBLISH
answering 0 receivers means "not connected anywhere". The relay offers the frame to its hub and publishes the
client's ack back, or says at once that it could not offer it (full queue, user just left), so the worker
fails fast instead of waiting out the ack timeout.

Channels: `{prefix}:user:{user_id}` carries `{"notification_id", "frame"}`;
`{prefix}:ack:{user_id}:{notification_id}` carries `{"type": "ack", "connection_id", ...}` or
`{"type": "not_offered", "reason": "queue_full" | "not_connected", ...}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from herald.adapters.channels.push import PushHub
from herald.domain.errors import PermanentDeliveryError, PushNotAcked, RecipientNotConnected, TransientDeliveryError

log = logging.getLogger("herald.push")

DEFAULT_PREFIX = "herald:push"
# Connecting, a command's reply, a SUBSCRIBE's confirmation: loopback or LAN Redis answers well within this.
REDIS_TIMEOUT = 5.0
# A command that meets a dead connection (Redis restarted) reconnects and runs again this many times.
RECONNECT_RETRIES = 2

NotOfferedReason = Literal["queue_full", "not_connected"]


# --- the wire format: pure functions -----------------------------------------------------------------------


def user_channel(prefix: str, user_id: str) -> str:
    return f"{prefix}:user:{user_id}"


def ack_channel(prefix: str, user_id: str, notification_id: str) -> str:
    return f"{prefix}:ack:{user_id}:{notification_id}"


def encode_envelope(notification_id: str, frame: dict[str, Any]) -> str:
    """The id travels beside the frame, so the relay never has to know the frame's shape."""
    return json.dumps({"notification_id": notification_id, "frame": frame}, separators=(",", ":"))


def decode_envelope(data: bytes | str) -> tuple[str, dict[str, Any]] | None:
    """(notification_id, frame), or None when the message is not one of ours."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    notification_id, frame = value.get("notification_id"), value.get("frame")
    if not isinstance(notification_id, str) or not notification_id or not isinstance(frame, dict):
        return None
    return notification_id, frame


@dataclass(frozen=True)
class Reply:
    """What one API process answers on the ack channel: an ack (connection_id) or why it could not offer."""

    connection_id: str | None = None
    reason: NotOfferedReason | None = None


def encode_ack(user_id: str, notification_id: str, connection_id: str) -> str:
    # user_id and notification_id are repeated in the body: `a:b` + `c` and `a` + `b:c` share a channel name.
    return json.dumps(
        {"type": "ack", "user_id": user_id, "notification_id": notification_id, "connection_id": connection_id}
    )


def encode_not_offered(user_id: str, notification_id: str, reason: NotOfferedReason) -> str:
    return json.dumps({"type": "not_offered", "user_id": user_id, "notification_id": notification_id, "reason": reason})


def decode_reply(data: bytes | str, user_id: str, notification_id: str) -> Reply | None:
    """The reply for this very (user, notification), or None for anything else."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict) or value.get("user_id") != user_id:
        return None
    if value.get("notification_id") != notification_id:
        return None
    if value.get("type") == "ack" and isinstance(value.get("connection_id"), str):
        return Reply(connection_id=value["connection_id"])
    if value.get("type") == "not_offered" and value.get("reason") in ("queue_full", "not_connected"):
        return Reply(reason=value["reason"])
    return None


def unreached(reasons: list[NotOfferedReason], receivers: int) -> PermanentDeliveryError | None:
    """Once every receiving process said it could not offer the frame, the error to raise; else None (wait)."""
    if len(reasons) < receivers:
        return None
    if all(reason == "not_connected" for reason in reasons):
        return RecipientNotConnected("the user has no live push connection on any API process")
    full = reasons.count("queue_full")
    return PushNotAcked(f"{full} API process(es) had only connections with a full send queue")


def relay_unavailable(exc: BaseException) -> TransientDeliveryError:
    """Redis down is worth retrying; the message names the error type only (a URL may carry a password)."""
    return TransientDeliveryError(
        f"cannot reach the push relay (Redis): {type(exc).__name__}", type_name="PushRelayUnavailable"
    )


def _connect(redis_url: str) -> Redis:
    """A client whose command on a connection that died with a Redis restart reconnects and runs again.

    Without the retry, the first PUBLISH after a restart fails on the pool's dead connection: a push attempt
    lost, or worse, an ack lost after the browser saw the frame, so the retry shows it twice.
    """
    return Redis.from_url(
        redis_url,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), RECONNECT_RETRIES),
    )


# --- the worker side ---------------------------------------------------------------------------------------


class RedisPushPublisher:
    """PushPublisher for workers: reaches users connected to any API process that runs a RedisPushRelay."""

    def __init__(self, redis_url: str, *, ack_timeout: float = 10.0, prefix: str = DEFAULT_PREFIX) -> None:
        self.ack_timeout = ack_timeout
        self.prefix = prefix
        self._redis = _connect(redis_url)

    async def publish(
        self, user_id: str, notification_id: str, frame: dict[str, Any], *, timeout: float | None = None
    ) -> str:
        """Publish the frame and return the id of the connection that acked it (waiting `timeout`, at most the
        ack timeout).

        RecipientNotConnected when no API process has the user connected, PushNotAcked without an ack in
        time, TransientDeliveryError (PushRelayUnavailable) when Redis cannot be reached.
        """
        loop = asyncio.get_running_loop()
        # A PubSub holds its own connection; closing it in `finally` drops the ack subscription with it.
        pubsub = self._redis.pubsub()
        try:
            try:
                # Subscribe before publishing: an ack that came back first would be lost.
                await pubsub.subscribe(ack_channel(self.prefix, user_id, notification_id))
                await _confirmed(pubsub, loop.time() + REDIS_TIMEOUT)
                receivers = await self._redis.publish(
                    user_channel(self.prefix, user_id), encode_envelope(notification_id, frame)
                )
            except (RedisError, OSError) as exc:
                raise relay_unavailable(exc) from exc
            if receivers == 0:
                raise RecipientNotConnected("the user has no live push connection on any API process")
            wait = self.ack_timeout if timeout is None else min(self.ack_timeout, timeout)
            return await self._await_ack(pubsub, user_id, notification_id, int(receivers), wait)
        finally:
            await _close(pubsub)

    async def _await_ack(self, pubsub: PubSub, user_id: str, notification_id: str, receivers: int, wait: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        reasons: list[NotOfferedReason] = []
        while (remaining := deadline - loop.time()) > 0:
            try:
                message = await pubsub.get_message(timeout=remaining)
            except (RedisError, OSError) as exc:
                raise relay_unavailable(exc) from exc
            if message is None or message["type"] != "message":
                continue
            reply = decode_reply(message["data"], user_id, notification_id)
            if reply is None:
                continue
            if reply.connection_id is not None:
                return reply.connection_id
            if reply.reason is not None:
                reasons.append(reply.reason)
            error = unreached(reasons, receivers)
            if error is not None:
                raise error
        raise PushNotAcked(f"no ack from {receivers} API process(es) within {wait:g}s")

    async def aclose(self) -> None:
        await self._redis.aclose()


async def _confirmed(pubsub: PubSub, deadline: float) -> None:
    """Wait for the SUBSCRIBE confirmation: only then does Redis deliver the channel's messages to us."""
    loop = asyncio.get_running_loop()
    while (remaining := deadline - loop.time()) > 0:
        message = await pubsub.get_message(timeout=remaining)
        if message is not None and message["type"] == "subscribe":
            return
    raise TimeoutError("Redis did not confirm the subscription")


# --- the API side ------------------------------------------------------------------------------------------


class RedisPushRelay:
    """Connects one API process's PushHub to Redis: frames in for its connected users, acks out.

    It subscribes to a user's channel while the hub has a connection for that user, so PUBLISH counts
    exactly the processes that can deliver. One PubSub connection carries every subscription; one task
    reads it and one task sends SUBSCRIBE/UNSUBSCRIBE in the order the hub asked for them.
    """

    def __init__(
        self,
        hub: PushHub,
        redis_url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        subscribe_timeout: float = REDIS_TIMEOUT,
        ack_window: float = 120.0,
        max_tracked: int = 100_000,
    ) -> None:
        self.hub = hub
        self.prefix = prefix
        self.subscribe_timeout = subscribe_timeout
        # Acks are forwarded only for frames this relay offered, and only this long after: a worker gives
        # up after its ack timeout anyway, and the table must not grow with clients that never ack.
        self.ack_window = ack_window
        self.max_tracked = max_tracked
        self._redis = _connect(redis_url)
        self._pubsub: PubSub | None = None
        self._subscriptions: dict[str, asyncio.Future[None]] = {}
        # Per channel, the SUBSCRIBEs sent and not yet confirmed, oldest first (Redis answers in order).
        self._confirmations: dict[str, deque[asyncio.Future[None]]] = {}
        self._commands: asyncio.Queue[tuple[str, str, asyncio.Future[None] | None]] = asyncio.Queue()
        self._relayed: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect (failing loudly when Redis is unreachable) and follow the hub's users from now on."""
        pubsub = self._redis.pubsub()
        try:
            await self._redis.ping()
            await pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves PubSub untyped
        except (RedisError, OSError) as exc:
            await _close(pubsub)
            raise RuntimeError(f"the push relay cannot reach Redis (HERALD_REDIS_URL): {type(exc).__name__}") from exc
        self._pubsub = pubsub
        self._reader = asyncio.create_task(self._read(pubsub))
        self._writer = asyncio.create_task(self._write(pubsub))
        self.hub.observe(self)
        for user_id in self.hub.users():
            self._subscribe(user_id)

    async def stop(self) -> None:
        self.hub.unobserve(self)
        for task in (self._reader, self._writer):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._reader, self._writer) if t is not None), return_exceptions=True)
        self._reader = self._writer = None
        # Let acks already on their way out reach their workers.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for waiting in self._confirmations.values():
            for future in waiting:
                _fail(future, ConnectionError("the push relay stopped"))
        self._confirmations.clear()
        self._subscriptions.clear()
        if self._pubsub is not None:
            await _close(self._pubsub)
            self._pubsub = None
        await self._redis.aclose()

    # PushHubObserver

    def user_connected(self, user_id: str) -> None:
        self._subscribe(user_id)

    def user_disconnected(self, user_id: str) -> None:
        self._subscriptions.pop(user_id, None)
        self._commands.put_nowait(("unsubscribe", user_channel(self.prefix, user_id), None))

    async def registered(self, user_id: str) -> None:
        """Return once this process's SUBSCRIBE for the user is confirmed; raise OSError when it is not."""
        future = self._subscriptions.get(user_id)
        if future is None or (future.done() and (future.cancelled() or future.exception() is not None)):
            if self._pubsub is None:
                raise ConnectionError("the push relay is not running")
            future = self._subscribe(user_id)  # the last attempt failed: try again for this connection
        try:
            await asyncio.wait_for(asyncio.shield(future), self.subscribe_timeout)
        except TimeoutError as exc:
            raise TimeoutError("Redis did not confirm the push subscription in time") from exc

    def unclaimed_ack(self, user_id: str, notification_id: str, connection_id: str) -> bool:
        if self._relayed.pop((user_id, notification_id), None) is None:
            return False
        channel = ack_channel(self.prefix, user_id, notification_id)
        self._spawn(self._reply(channel, encode_ack(user_id, notification_id, connection_id)))
        return True

    # internals

    def _subscribe(self, user_id: str) -> asyncio.Future[None]:
        channel = user_channel(self.prefix, user_id)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._subscriptions[user_id] = future
        self._confirmations.setdefault(channel, deque()).append(future)
        self._commands.put_nowait(("subscribe", channel, future))
        return future

    async def _write(self, pubsub: PubSub) -> None:
        while True:
            command, channel, future = await self._commands.get()
            try:
                if command == "subscribe":
                    await pubsub.subscribe(channel)
                else:
                    await pubsub.unsubscribe(channel)
            except (RedisError, OSError) as exc:
                log.warning("push relay: %s failed (%s)", command.upper(), type(exc).__name__)
                if future is not None:
                    waiting = self._confirmations.get(channel)
                    if waiting is not None and future in waiting:
                        waiting.remove(future)
                    _fail(future, ConnectionError(f"Redis refused the subscription: {type(exc).__name__}"))

    async def _read(self, pubsub: PubSub) -> None:
        delay = 0.1
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                # redis-py reconnects on the next read and re-subscribes every channel it knows.
                log.warning("push relay lost Redis (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = _text(message["channel"])
        if kind == "subscribe":
            waiting = self._confirmations.get(channel)
            if waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(None)
            if waiting is not None and not waiting:
                del self._confirmations[channel]
        elif kind == "message":
            self._relay(channel, message["data"])

    def _relay(self, channel: str, data: bytes | str) -> None:
        user_id = channel.removeprefix(user_channel(self.prefix, ""))
        envelope = decode_envelope(data)
        if envelope is None:
            log.warning("push relay: dropped a message that is not a push frame")
            return
        notification_id, frame = envelope
        if self.hub.offer(user_id, frame):
            self._remember(user_id, notification_id)
            return
        reason: NotOfferedReason = "queue_full" if self.hub.connected(user_id) else "not_connected"
        channel = ack_channel(self.prefix, user_id, notification_id)
        self._spawn(self._reply(channel, encode_not_offered(user_id, notification_id, reason)))

    def _remember(self, user_id: str, notification_id: str) -> None:
        now = asyncio.get_running_loop().time()
        key = (user_id, notification_id)
        self._relayed.pop(key, None)
        self._relayed[key] = now  # insertion order is age order: the oldest are first
        while self._relayed:
            oldest, offered_at = next(iter(self._relayed.items()))
            if now - offered_at <= self.ack_window and len(self._relayed) <= self.max_tracked:
                break
            del self._relayed[oldest]

    async def _reply(self, channel: str, body: str) -> None:
        try:
            await self._redis.publish(channel, body)
        except (RedisError, OSError) as exc:
            log.warning("push relay: could not publish a reply (%s)", type(exc).__name__)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _close(pubsub: PubSub) -> None:
    """Close a PubSub and its connection, which drops its subscriptions on the server too."""
    with contextlib.suppress(RedisError, OSError):
        await pubsub.aclose()


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
        future.exception()  # retrieved: nobody may be waiting, and that is fine


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
