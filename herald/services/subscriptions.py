"""Subscriptions' I/O: hand an event to each subscription that wants it (signal-with-start of its
SubscriptionWorkflow), post one event to its subscriber, and keep its delivery state.

The signed POST is the agent callback's (herald/services/callbacks.py: Standard Webhooks, HERALD_WEBHOOK_SECRET,
the SSRF guard on the connection); the URL is read from the store at each send, so it never enters Temporal's
history, and is checked against the guard again then (a host that moved inward since it was saved is refused).
"""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from herald.adapters.netguard import UnsafeURL, check_public_url
from herald.adapters.store import Store
from herald.config import Settings
from herald.domain import subscriptions as rules
from herald.domain.errors import PermanentDeliveryError
from herald.models import (
    RetrySettings,
    Subscription,
    SubscriptionEvent,
    SubscriptionInput,
    SubscriptionMark,
    SubscriptionPostResult,
    SubscriptionRun,
    utcnow,
)
from herald.services.callbacks import AgentCallbacks

log = logging.getLogger("herald.subscriptions")

SUBSCRIPTION_WORKFLOW = "SubscriptionWorkflow"
EVENT_SIGNAL = "event"


def subscription_workflow_id(name: str) -> str:
    return f"subscription/{name}"


async def save_subscription(
    store: Store, name: str, body: SubscriptionInput, owner: str, *, allow_private: bool
) -> Subscription:
    """Check the URL against the SSRF guard (UnsafeURL, its message never quoting the URL) unless private
    receivers are allowed, then save the subscription whole, enabled with no failures (herald.domain.subscriptions
    .saved). The API, the CLI and HeraldClient save through here."""
    if not allow_private:
        await check_public_url(body.url)
    subscription = rules.saved(name, body, owner, utcnow(), await store.subscriptions.get_subscription(name))
    await store.subscriptions.put_subscription(subscription)
    return subscription


class SubscriptionService:
    def __init__(
        self,
        store: Store,
        callbacks: AgentCallbacks | None,
        *,
        retry: RetrySettings | None = None,
        max_failures: int = 5,
        send_timeout_seconds: float = 30.0,
        allow_private: bool = False,
    ) -> None:
        self._store = store
        self._callbacks = callbacks
        self._retry = retry or RetrySettings()
        self._max_failures = max_failures
        self._send_timeout = send_timeout_seconds
        self._allow_private = allow_private

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> SubscriptionService:
        return cls(
            store,
            AgentCallbacks.from_settings(settings),
            retry=settings.delivery_policy().retry,
            max_failures=settings.webhook.subscription_max_failures,
            send_timeout_seconds=settings.delivery.send_timeout_seconds,
            allow_private=settings.webhook.allow_private_webhooks,
        )

    def run_for(self, name: str) -> SubscriptionRun:
        return SubscriptionRun(
            name=name, retry=self._retry, max_failures=self._max_failures, send_timeout_seconds=self._send_timeout
        )

    async def publish(self, client: Client, task_queue: str, events: list[SubscriptionEvent]) -> int:
        """Signal each event to every enabled subscription that wants it, starting its workflow if none runs; the
        signals one subscription gets arrive in this order. How many signals were sent."""
        if not events:
            return 0
        agents = {e.agent_id for e in events}
        found = {s.name: s for agent in agents for s in await self._store.subscriptions.candidates(agent)}
        sent = 0
        for event in events:
            for name in rules.receivers(found.values(), event):
                await client.start_workflow(
                    SUBSCRIPTION_WORKFLOW,
                    self.run_for(name),
                    id=subscription_workflow_id(name),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    start_signal=EVENT_SIGNAL,
                    start_signal_args=[event],
                    static_summary=f"subscription {name}",
                )
                sent += 1
        return sent

    async def post(
        self, name: str, event: SubscriptionEvent, activity_timeout: float | None = None
    ) -> SubscriptionPostResult:
        """POST one event to the subscription's URL, signed with `webhook-id` the event's id. `gone` when the
        subscription was deleted or disabled meanwhile; raises TransientDeliveryError to retry and
        PermanentDeliveryError to give up."""
        subscription = await self._store.subscriptions.get_subscription(name)
        if subscription is None or not subscription.enabled:
            return SubscriptionPostResult.gone
        if self._callbacks is None:
            raise PermanentDeliveryError("no signer configured", type_name="SubscriptionUnsigned")
        if not self._allow_private:
            try:
                await check_public_url(subscription.url)
            except UnsafeURL as exc:
                raise PermanentDeliveryError(f"subscription URL {exc}", type_name="SubscriptionUrlRefused") from None
        body = event.model_dump(mode="json", exclude={"agent_id"})
        await self._callbacks.post_signed(subscription.url, event.id, body, activity_timeout, kind="Subscription")
        return SubscriptionPostResult.sent

    async def mark(self, mark: SubscriptionMark) -> None:
        after = await self._store.subscriptions.mark(
            mark.name,
            failures=mark.failures,
            last_error=rules.bounded_error(mark.last_error) if mark.last_error else None,
            disable=mark.disable,
            now=utcnow(),
        )
        if after is not None and mark.disable:
            log.warning("subscription %s disabled after %d failed events in a row", mark.name, mark.failures)
