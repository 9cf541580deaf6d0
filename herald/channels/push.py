"""In-process push hub: live connections per user, each frame acked by the client.

A push counts as delivered only when a connected client acks it; with nobody connected it fails at once
with RecipientNotConnected, so the workflow falls through to email instead of waiting on retries.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from herald.channels.base import OutboundMessage, SendResult
from herald.channels.render import push_frame
from herald.errors import RecipientNotConnected, TransientDeliveryError
from herald.models import ChannelName

_ids = itertools.count(1)


class PushConnection:
    """One live client (a WebSocket, a test). Read frames with `receive`, confirm them with `ack`."""

    def __init__(self, hub: PushHub, user_id: str) -> None:
        self.id = f"conn-{next(_ids)}"
        self.user_id = user_id
        self._hub = hub
        self._frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive(self) -> dict[str, Any]:
        return await self._frames.get()

    def ack(self, notification_id: str) -> bool:
        return self._hub.ack(self.user_id, notification_id, self.id)

    def close(self) -> None:
        self._hub.disconnect(self)

    def _offer(self, frame: dict[str, Any]) -> None:
        self._frames.put_nowait(frame)

    def __enter__(self) -> PushConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PushHub:
    def __init__(self, ack_timeout: float = 10.0) -> None:
        self.ack_timeout = ack_timeout
        self._connections: dict[str, list[PushConnection]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[str]] = {}

    def connect(self, user_id: str) -> PushConnection:
        connection = PushConnection(self, user_id)
        self._connections.setdefault(user_id, []).append(connection)
        return connection

    def disconnect(self, connection: PushConnection) -> None:
        conns = self._connections.get(connection.user_id, [])
        if connection in conns:
            conns.remove(connection)
        if not conns:
            self._connections.pop(connection.user_id, None)

    def connected(self, user_id: str) -> bool:
        return bool(self._connections.get(user_id))

    def ack(self, user_id: str, notification_id: str, connection_id: str) -> bool:
        """Resolve the publisher waiting for this frame; False if nobody waits (late or repeated ack)."""
        future = self._pending.get((user_id, notification_id))
        if future is None or future.done():
            return False
        future.set_result(connection_id)
        return True

    async def publish(self, user_id: str, notification_id: str, frame: dict[str, Any]) -> str:
        """Offer the frame to every connection of the user and wait for the first ack."""
        connections = list(self._connections.get(user_id, []))
        if not connections:
            raise RecipientNotConnected("the user has no live push connection")
        key = (user_id, notification_id)
        future = self._pending.get(key)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
        for connection in connections:
            connection._offer(frame)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.ack_timeout)
        except TimeoutError as exc:
            raise TransientDeliveryError(
                f"no ack from {len(connections)} connection(s) within {self.ack_timeout:g}s", type_name="PushNotAcked"
            ) from exc
        finally:
            if future.done():
                self._pending.pop(key, None)


class PushChannel:
    name = ChannelName.push

    def __init__(self, hub: PushHub) -> None:
        self.hub = hub

    async def send(self, message: OutboundMessage) -> SendResult:
        n = message.notification
        connection_id = await self.hub.publish(n.user_id, n.notification_id, push_frame(message))
        return SendResult(provider_message_id=f"push:{connection_id}")
