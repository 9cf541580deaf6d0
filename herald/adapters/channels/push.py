"""Push: the hub of live connections per user, each frame acked by the client, and the push channel.

A push counts as delivered only when a connected client acks it. With nobody connected it fails at once
with RecipientNotConnected, and without an ack in time it fails with PushNotAcked: both are permanent, so
the workflow falls through to email instead of waiting on retries while the person may be away.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Protocol

from herald.adapters.channels.base import Channel, OutboundMessage, SendResult
from herald.adapters.channels.render import push_frame
from herald.domain.errors import PushNotAcked, RecipientNotConnected
from herald.domain.resolve import LIVE_PUSH_PREFIX
from herald.models import ChannelName

_ids = itertools.count(1)
# Frames one hub lets wait for an ack at once (each is a future and a key: small, but not unbounded).
MAX_PENDING_ACKS = 10_000


class PushConnection:
    """One live client (a WebSocket, a test). Read frames with `receive`, confirm them with `ack`."""

    def __init__(self, hub: PushHub, user_id: str, queue_size: int) -> None:
        self.id = f"conn-{next(_ids)}"
        self.user_id = user_id
        self._hub = hub
        # Bounded: a client that stops reading loses frames (they go unacked and fall back to email)
        # instead of growing this process's memory without limit.
        self._frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)

    async def receive(self) -> dict[str, Any]:
        return await self._frames.get()

    def ack(self, notification_id: str) -> bool:
        return self._hub.ack(self.user_id, notification_id, self.id)

    async def registered(self) -> None:
        """Return once every publisher can reach this connection (with Redis: the relay's SUBSCRIBE is confirmed).

        A client told "ready" before this would miss frames published in between.
        """
        await self._hub.registered(self.user_id)

    def close(self) -> None:
        self._hub.disconnect(self)

    def _offer(self, frame: dict[str, Any]) -> bool:
        """Queue the frame for this client; False when its queue is full."""
        try:
            self._frames.put_nowait(frame)
        except asyncio.QueueFull:
            return False
        return True

    def __enter__(self) -> PushConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PushPublisher(Protocol):
    """Reaches a user's live connections: in-process (PushHub) or across processes (Redis)."""

    async def publish(
        self, user_id: str, notification_id: str, frame: dict[str, Any], *, timeout: float | None = None
    ) -> str:
        """Offer `frame` and return the id of the connection that acked it, waiting at most `timeout` seconds
        (and never longer than the publisher's own ack timeout).

        Raises RecipientNotConnected when the user has no live connection, PushNotAcked without an ack.
        """
        ...


class PushHubObserver(Protocol):
    """Follows a hub's users and the acks no local publisher waits for: the Redis relay of an API process."""

    def user_connected(self, user_id: str) -> None:
        """The user's first live connection in this hub."""
        ...

    def user_disconnected(self, user_id: str) -> None:
        """The user's last live connection in this hub went away."""
        ...

    async def registered(self, user_id: str) -> None:
        """Return once publishers elsewhere can reach the user's connections here.

        Raise OSError (ConnectionError, TimeoutError) when they cannot; the WebSocket then closes with 1013.
        """
        ...

    def unclaimed_ack(self, user_id: str, notification_id: str, connection_id: str) -> bool:
        """An ack that no `publish` of this hub waits for; True if the observer passed it on."""
        ...


class PushHub:
    """The live connections of this process, and acks for frames published to them."""

    def __init__(self, ack_timeout: float = 10.0, queue_size: int = 100, max_pending: int = MAX_PENDING_ACKS) -> None:
        self.ack_timeout = ack_timeout
        self.queue_size = queue_size
        # At most this many frames wait for an ack at once; a publish beyond it is refused (PushNotAcked, so the
        # notification goes to email) rather than held: slow clients cannot grow the hub's memory without limit.
        self.max_pending = max_pending
        self._connections: dict[str, list[PushConnection]] = {}
        # (user, notification) -> the ack's future and how many publishes wait on it (a retry may join one).
        # The last waiter to leave removes the entry, acked or not: nothing stays behind after an ack timeout.
        self._pending: dict[tuple[str, str], tuple[asyncio.Future[str], int]] = {}
        self._observer: PushHubObserver | None = None

    def observe(self, observer: PushHubObserver) -> None:
        """Attach the one observer (the relay); it hears only about changes from now on."""
        if self._observer is not None and self._observer is not observer:
            raise RuntimeError("this push hub already has an observer (one relay per hub)")
        self._observer = observer

    def unobserve(self, observer: PushHubObserver) -> None:
        if self._observer is observer:
            self._observer = None

    def users(self) -> list[str]:
        """Users with at least one live connection here."""
        return list(self._connections)

    def connect(self, user_id: str) -> PushConnection:
        connection = PushConnection(self, user_id, self.queue_size)
        first = not self._connections.get(user_id)
        self._connections.setdefault(user_id, []).append(connection)
        if first and self._observer is not None:
            self._observer.user_connected(user_id)
        return connection

    def disconnect(self, connection: PushConnection) -> None:
        conns = self._connections.get(connection.user_id)
        if conns is None or connection not in conns:
            return  # already gone: closing twice is harmless
        conns.remove(connection)
        if not conns:
            del self._connections[connection.user_id]
            if self._observer is not None:
                self._observer.user_disconnected(connection.user_id)

    def connected(self, user_id: str) -> bool:
        return bool(self._connections.get(user_id))

    async def registered(self, user_id: str) -> None:
        """In-process publishers reach a connection as soon as it exists; an observer may need longer."""
        if self._observer is not None:
            await self._observer.registered(user_id)

    def ack(self, user_id: str, notification_id: str, connection_id: str) -> bool:
        """Resolve the publisher waiting for this frame; else hand the ack to the observer (a relayed frame).

        False if nobody takes it (a late or repeated ack).
        """
        entry = self._pending.get((user_id, notification_id))
        future = entry[0] if entry is not None else None
        if future is None or future.done():
            if self._observer is not None:
                return self._observer.unclaimed_ack(user_id, notification_id, connection_id)
            return False
        future.set_result(connection_id)
        return True

    async def publish(
        self, user_id: str, notification_id: str, frame: dict[str, Any], *, timeout: float | None = None
    ) -> str:
        """Offer the frame to every connection of the user and wait for the first ack (at most `timeout`)."""
        connections = list(self._connections.get(user_id, []))
        if not connections:
            raise RecipientNotConnected("the user has no live push connection")
        wait = self.ack_timeout if timeout is None else min(self.ack_timeout, timeout)
        key = (user_id, notification_id)
        entry = self._pending.get(key)
        if entry is not None and not entry[0].done():
            future, waiters = entry[0], entry[1] + 1
        elif len(self._pending) - (entry is not None) >= self.max_pending:
            raise PushNotAcked(f"{len(self._pending)} frames already wait for an ack in this process (the limit)")
        else:
            future, waiters = asyncio.get_running_loop().create_future(), 1
        self._pending[key] = (future, waiters)
        try:
            offered = self.offer(user_id, frame)
            if not offered:
                raise PushNotAcked(f"all {len(connections)} connection(s) have a full send queue")
            try:
                return await asyncio.wait_for(asyncio.shield(future), wait)
            except TimeoutError as exc:
                raise PushNotAcked(f"no ack from {offered} connection(s) within {wait:g}s") from exc
        finally:
            self._leave(key, future)

    def _leave(self, key: tuple[str, str], future: asyncio.Future[str]) -> None:
        """One publish stops waiting for `future`; the last one out removes the entry (a late ack finds none)."""
        entry = self._pending.get(key)
        if entry is None or entry[0] is not future:
            return
        if entry[1] > 1:
            self._pending[key] = (future, entry[1] - 1)
            return
        del self._pending[key]
        if not future.done():
            future.cancel()

    def offer(self, user_id: str, frame: dict[str, Any]) -> int:
        """Queue `frame` on every live connection of the user; how many took it."""
        return sum(connection._offer(frame) for connection in list(self._connections.get(user_id, [])))


class PushChannel:
    """A live connection first (acked); when the user has none, Web Push to their browsers if configured."""

    name = ChannelName.push

    def __init__(self, live: PushPublisher, webpush: Channel | None = None) -> None:
        self.live = live
        self.webpush = webpush

    async def send(self, message: OutboundMessage) -> SendResult:
        n = message.notification
        try:
            connection_id = await self.live.publish(
                n.recipient, n.notification_id, push_frame(message), timeout=message.timeout
            )
        except RecipientNotConnected:
            if self.webpush is None:
                raise
            return await self.webpush.send(message)
        return SendResult(provider_message_id=f"{LIVE_PUSH_PREFIX}{connection_id}")

    async def aclose(self) -> None:
        """Close what holds connections: a Redis publisher, the Web Push session (the hub holds none)."""
        for part in (self.live, self.webpush):
            aclose = getattr(part, "aclose", None)
            if aclose is not None:
                await aclose()
