"""Subscriptions' activities: publish events to the subscriptions that want them (from record_outcome and the
heartbeat's count step), post one event to its subscriber, and keep the subscription's delivery state."""

from __future__ import annotations

import logging

from temporalio import activity

from activities.delivery import to_application_error
from herald.domain.errors import DeliveryError
from herald.models import SubscriptionEvent, SubscriptionMark, SubscriptionPost, SubscriptionPostResult
from herald.services.subscriptions import SubscriptionService

log = logging.getLogger("herald.subscriptions")


class SubscriptionActivities:
    def __init__(self, service: SubscriptionService | None) -> None:
        self._service = service

    async def publish(self, events: list[SubscriptionEvent]) -> None:
        """Hand the events to their subscriptions' workflows, from inside another activity (a failure here fails
        that activity, which Temporal retries: a repeated event is dropped by its id)."""
        if self._service is None or not events:
            return
        await self._service.publish(activity.client(), activity.info().task_queue, events)

    @activity.defn(name="post_subscription_event")
    async def post_subscription_event(self, post: SubscriptionPost) -> SubscriptionPostResult:
        """One signed POST; Temporal retries what may pass (5xx, 429, unreachable) on the webhook schedule."""
        if self._service is None:
            return SubscriptionPostResult.gone
        info = activity.info()
        timeout = info.start_to_close_timeout.total_seconds() if info.start_to_close_timeout else None
        try:
            return await self._service.post(post.name, post.event, timeout)
        except DeliveryError as exc:
            raise to_application_error(exc, info.attempt) from None

    @activity.defn(name="mark_subscription")
    async def mark_subscription(self, mark: SubscriptionMark) -> None:
        if self._service is not None:
            await self._service.mark(mark)


def occurrence() -> str:
    """This activity's run and id: the same on each of its retries."""
    info = activity.info()
    return f"{info.workflow_run_id}.{info.activity_id}"
