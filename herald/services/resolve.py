"""A resolved notification, told where it was delivered: the live inbox (a `resolved` WebSocket frame), the browser
that showed it by Web Push (a push with the same Topic, replacing it), and, where the user's `notify_resolved`
allows, a short `Resolved: <title>` by email and SMS. The Slack and Telegram messages are edited by the chat
conclusion (herald/services/chat_conclusion.py). What is told where is decided in the workflow
(herald.domain.resolve.resolve_plan) and handed over in the ResolvedNotice.

Best effort throughout: what can't be told now (nobody connected, a subscription gone, an address refused) is read
from the audit list later, where the outcome says `resolved`. A failure that may pass raises after the other parts
ran, so the activity retries; the email and SMS are in the delivery log under their own key, so a retry never sends
them twice, and the frame and the replacing push are the same again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from herald.adapters.channels.base import Channel, OutboundMessage, provider_timeout
from herald.adapters.channels.push import PushChannel
from herald.adapters.store import Store
from herald.domain import search
from herald.domain.errors import DeliveryError, PushNotAcked, RecipientNotConnected, TransientDeliveryError
from herald.domain.resolve import ended_open, resolve_ended_id, resolved_frame, resolved_notification, tells_resolved
from herald.domain.routing import merge_notify_resolved
from herald.models import (
    ChannelName,
    Contact,
    DeliveryPolicy,
    DeliveryRequest,
    EndedNotification,
    Resolution,
    ResolvedNotice,
    ResolveEnded,
    ResolveRequest,
)
from herald.services.delivery import DeliveryService

log = logging.getLogger("herald.resolve")

# How long the live inbox has to ack the `resolved` frame: a frame nobody acks is not resent (the list says it).
FRAME_ACK_SECONDS = 5.0
WEBPUSH = "webpush"  # what `told` calls the replacing Web Push (`push` is the live frame)


async def resolve_workflow(
    temporal: Client, workflow_id: str, request: ResolveRequest, rpc_timeout: timedelta | None = None
) -> bool:
    """Resolve one notification workflow (its `resolve` update): False when it was not open (it ended meanwhile, it
    started before resolving existed, or there is no such workflow). WorkflowUpdateRPCTimeoutOrCancelledError when no
    worker took it in time (the caller retries)."""
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


async def resolve_workflows(
    temporal: Client, workflow_ids: Iterable[str], request: ResolveRequest, rpc_timeout: timedelta | None = None
) -> list[str]:
    """Resolve each workflow at once; the ids of those it resolved, in the given order. The first error other than
    "not open" is raised once every other has been tried (a resolve repeated is a no-op)."""
    ids = list(workflow_ids)
    results = await asyncio.gather(
        *(resolve_workflow(temporal, w, request, rpc_timeout) for w in ids), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [w for w, result in zip(ids, results, strict=True) if result is True]


# ResolveEndedWorkflow's type (workflows/resolve.py), started by name: the Temporal layer sits above this one.
RESOLVE_ENDED_WORKFLOW = "ResolveEndedWorkflow"


async def resolve_ended(
    temporal: Client, notification_id: str, by: str, policy: DeliveryPolicy, task_queue: str
) -> bool:
    """Start the ResolveEndedWorkflow of a notification whose workflow completed delivered; False when one was
    already started (its id is never reused: it was resolved before, and this resolve is a no-op for it)."""
    try:
        await temporal.start_workflow(
            RESOLVE_ENDED_WORKFLOW,
            ResolveEnded(notification_id=notification_id, by=by, policy=policy),
            id=resolve_ended_id(notification_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"resolve {notification_id}, delivered, as {by}",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def resolve_ended_workflows(
    temporal: Client, workflow_ids: Iterable[str], by: str, policy: DeliveryPolicy, task_queue: str
) -> list[str]:
    """Of these notification workflows (ones their `resolve` update found not open), resolve each that has completed
    delivered and is not resolved yet (herald.domain.resolve.ended_open, by its HeraldStatus) with a
    ResolveEndedWorkflow; the ids of those started, in the given order. One that is gone resolves nothing."""

    async def one(workflow_id: str) -> bool:
        try:
            description = await temporal.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        if description.status is not WorkflowExecutionStatus.COMPLETED:
            return False
        if not ended_open(description.typed_search_attributes.get(search.STATUS)):
            return False
        return await resolve_ended(temporal, workflow_id.removeprefix("notification/"), by, policy, task_queue)

    ids = list(workflow_ids)
    results = await asyncio.gather(*(one(w) for w in ids))
    return [w for w, started in zip(ids, results, strict=True) if started]


class ResolveService:
    def __init__(self, store: Store, channels: Mapping[ChannelName, Channel], delivery: DeliveryService) -> None:
        self.store = store
        self.channels = channels
        self.delivery = delivery

    async def ended(self, notification_id: str) -> EndedNotification | None:
        """A notification whose workflow has ended, as the store recorded it (None: no outcome recorded, or past
        retention), with its kept title and whether its resolve is told by email and SMS (the user's
        `notify_resolved` now, for its agent and priority). One read of each, no write."""
        outcome = await self.store.notifications.get_outcome(notification_id)
        if outcome is None:
            return None
        content = await self.store.notifications.get_content(notification_id)
        preferences = await self.store.users.get_preferences(outcome.user_id)
        return EndedNotification(
            outcome=outcome,
            title=content.title if content is not None else "",
            notify_resolved=tells_resolved(merge_notify_resolved(preferences, outcome.agent_id), outcome.priority),
        )

    async def announce(
        self, notice: ResolvedNotice, attempt: int = 1, activity_timeout: float | None = None
    ) -> list[str]:
        """Tell of the resolve, every part at once; the channels told. Raises the first TransientDeliveryError of a
        part (after the others ran), for the activity to retry."""
        frame_wait = FRAME_ACK_SECONDS if activity_timeout is None else min(FRAME_ACK_SECONDS, activity_timeout / 2)
        parts: list[tuple[str, asyncio.Future[bool]]] = [
            (ChannelName.push.value, asyncio.ensure_future(self._tell_live(notice, frame_wait)))
        ]
        if notice.replace_push:
            parts.append((WEBPUSH, asyncio.ensure_future(self._replace_push(notice, activity_timeout))))
        for channel in notice.tell:
            parts.append((channel.value, asyncio.ensure_future(self._tell(notice, channel, attempt, activity_timeout))))
        results = await asyncio.gather(*(future for _, future in parts), return_exceptions=True)
        told: list[str] = []
        retry: TransientDeliveryError | None = None
        for (name, _), result in zip(parts, results, strict=True):
            if result is True:
                told.append(name)
            elif isinstance(result, TransientDeliveryError):
                retry = retry or result
            elif isinstance(result, BaseException):
                raise result
        if retry is not None:
            raise retry
        return told

    async def _tell_live(self, notice: ResolvedNotice, wait: float) -> bool:
        """The `resolved` frame to the user's live connections (every one of the user's inboxes, whether or not push
        delivered this notification: an inbox lists what arrived by email too)."""
        push = self.channels.get(ChannelName.push)
        if not isinstance(push, PushChannel):
            return False
        try:
            await push.live.publish(
                notice.user_id, notice.notification_id, resolved_frame(notice.notification_id), timeout=wait
            )
        except (RecipientNotConnected, PushNotAcked):
            return False
        return True

    async def _replace_push(self, notice: ResolvedNotice, activity_timeout: float | None) -> bool:
        """A Web Push under the Topic of the one that delivered (its key `<workflow_id>/push`), type `resolved`: the
        service worker shows it under the same tag (the notification id), replacing what the browser shows."""
        push = self.channels.get(ChannelName.push)
        webpush = push.webpush if isinstance(push, PushChannel) else None
        if webpush is None:
            return False
        original = DeliveryRequest(
            notification=resolved_notification(notice), channel=ChannelName.push, workflow_id=notice.workflow_id
        )
        message = OutboundMessage(
            original.notification,
            ChannelName.push,
            original.model_copy(update={"resolved": True}).idempotency_key,
            Contact(),
            replaces=original.idempotency_key,
            timeout=provider_timeout(activity_timeout) if activity_timeout is not None else None,
        )
        try:
            await webpush.send(message)
        except TransientDeliveryError:
            raise
        except DeliveryError as exc:  # no subscription left, or refused for good: nothing more to replace
            log.info("%s: the Web Push of the resolve was not sent", exc.type_name)
            return False
        return True

    async def _tell(self, notice: ResolvedNotice, channel: ChannelName, attempt: int, timeout: float | None) -> bool:
        """`Resolved: <title>` by email or SMS, through the delivery service (contact, logs, the delivery log)."""
        request = DeliveryRequest(
            notification=resolved_notification(notice),
            channel=channel,
            workflow_id=notice.workflow_id,
            resolved=True,
        )
        try:
            await self.delivery.deliver(request, attempt, timeout)
        except TransientDeliveryError:
            raise
        except DeliveryError as exc:  # the address refused, for good: logged in the delivery log by the service
            log.info("%s: the %s of the resolve was not sent", exc.type_name, channel.value)
            return False
        return True
