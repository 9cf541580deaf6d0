"""A resolved notification, told where it was delivered: the live inbox first (a `resolved` WebSocket frame).

Best effort throughout: what can't be told now (nobody connected) is read from the audit list later, where the
outcome says `resolved`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from herald.adapters.channels.base import Channel
from herald.adapters.channels.push import PushChannel
from herald.adapters.store import Store
from herald.domain.errors import PushNotAcked, RecipientNotConnected
from herald.domain.resolve import resolved_frame
from herald.models import ChannelName, Resolution, ResolvedNotice, ResolveRequest

log = logging.getLogger("herald.resolve")

# How long the live inbox has to ack the `resolved` frame: a frame nobody acks is not resent (the list says it).
FRAME_ACK_SECONDS = 5.0


class ResolveService:
    def __init__(self, store: Store, channels: Mapping[ChannelName, Channel]) -> None:
        self.store = store
        self.channels = channels

    async def announce(self, notice: ResolvedNotice, timeout: float | None = None) -> list[str]:
        """Tell of the resolve; the channels told."""
        told: list[str] = []
        if await self._tell_live(notice, timeout):
            told.append(ChannelName.push.value)
        return told

    async def _tell_live(self, notice: ResolvedNotice, timeout: float | None) -> bool:
        """The `resolved` frame to the user's live connections (every one of the user's inboxes, whether or not push
        delivered this notification: an inbox lists what arrived by email too)."""
        push = self.channels.get(ChannelName.push)
        if not isinstance(push, PushChannel):
            return False
        wait = FRAME_ACK_SECONDS if timeout is None else min(FRAME_ACK_SECONDS, timeout)
        try:
            await push.live.publish(
                notice.user_id, notice.notification_id, resolved_frame(notice.notification_id), timeout=wait
            )
        except (RecipientNotConnected, PushNotAcked):
            return False
        return True


async def resolve_workflow(temporal: Client, workflow_id: str, request: ResolveRequest, rpc_timeout: timedelta) -> bool:
    """Send one notification workflow the `resolve` update: False when it was not open (it ended, or started before
    resolving existed). HeraldClient.resolve runs it for each notification it found, a heartbeat for its missed alert.
    """
    handle = temporal.get_workflow_handle(workflow_id)
    try:
        await handle.execute_update("resolve", request, result_type=Resolution, rpc_timeout=rpc_timeout)
    except WorkflowUpdateFailedError:
        return False
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
