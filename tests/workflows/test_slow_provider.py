"""A provider that accepts slowly: the send gives up before Temporal does, so every send is in the delivery log.

The workflow's delivery activity has `send_timeout_seconds` (5 s in FAST_POLICY); the worker's webhook timeout
is 10 s. A receiver that takes 6 s used to outlast the activity: Temporal cut the attempt off unlogged and the
retry sent the notification again, so the receiver counted a send Herald had no record of.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from herald.adapters.channels.base import OutboundMessage, SendResult, provider_timeout
from herald.adapters.store import Store
from herald.domain.errors import TransientDeliveryError
from herald.models import AgentNotification, ChannelName, ChannelStatus, Contact, DeliveryRequest, Priority
from herald.services.delivery import DeliveryService
from tests.conftest import FAST_POLICY, Harness
from tests.fakes.http import read_body, start_fake


@dataclass
class SlowReceiver:
    """Counts every POST when it arrives, then waits its scripted delay before answering 200 (then answers at once)."""

    delays: list[float] = field(default_factory=list)
    posts: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await read_body(receive)
        self.posts.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await asyncio.sleep(self.delays.pop(0) if self.delays else 0.0)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-message-id", b"slow-ok")]})
        await send({"type": "http.response.body", "body": b"{}"})


async def test_a_slow_receiver_is_timed_out_by_herald_and_every_send_is_logged(herald: Harness) -> None:
    """A receiver slower than the activity's timeout used to be cut off by Temporal itself: no attempt was logged
    (the outcome said only that the activity timed out) and the retry posted again, so the receiver took two sends
    while the delivery log knew of one. Now the webhook gives up first (provider_timeout of the activity's 5 s),
    the timeout is a logged attempt, and the receiver's count equals the log's."""
    activity_timeout = FAST_POLICY.send_timeout_seconds
    assert (
        herald.settings.webhook.webhook_timeout_seconds > activity_timeout
    )  # the configured timeout alone would outlast it
    receiver = SlowReceiver(delays=[activity_timeout + 1.0])
    server, task, receiver.port = await start_fake(receiver)
    try:
        user = f"user-{uuid.uuid4().hex[:8]}"
        await herald.store.users.put_contact(user, Contact(webhook_url=f"http://127.0.0.1:{receiver.port}/hook"))
        n = AgentNotification(
            agent_id="monitor", user_id=user, title="Disk full", priority=Priority.high, channels=[ChannelName.webhook]
        )
        outcome = await (await herald.client.notify(n)).outcome()
    finally:
        server.should_exit = True
        await task

    webhook = outcome.channels[ChannelName.webhook]
    assert webhook.status is ChannelStatus.delivered
    attempts = await herald.store.notifications.attempts(n.notification_id)
    # Every POST the receiver counted is an attempt in the log: none was made behind a Temporal timeout.
    assert len(receiver.posts) == len(attempts) == 2
    first, second = attempts
    assert (first.attempt, first.result, first.error_type) == (1, ChannelStatus.failed, "WebhookTimeout")
    assert (second.attempt, second.result, second.provider_message_id) == (2, ChannelStatus.delivered, "slow-ok")
    assert {p["webhook-id"] for p in receiver.posts} == {f"{n.workflow_id}/webhook"}


def test_every_provider_timeout_ends_before_its_activity() -> None:
    """The provider's budget is always shorter than the activity's timeout, with a margin, and a shorter
    configured timeout is kept."""
    for activity in (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 120.0, 3600.0):
        budget = provider_timeout(activity)
        assert 0 < budget < activity
        assert activity - budget >= min(1.0, activity / 2)
        assert provider_timeout(activity, configured=budget / 2) == budget / 2
        assert provider_timeout(activity, configured=activity * 2) == budget


@dataclass
class SilentProvider:
    """A channel whose provider never answers and whose client sets no timeout of its own."""

    name: ChannelName = ChannelName.email
    calls: int = 0
    budgets: list[float | None] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.calls += 1
        self.budgets.append(message.timeout)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_channel_that_overruns_its_budget_is_stopped_and_logged_inside_the_activity(store: Store) -> None:
    """A channel ignoring its budget is stopped by the delivery service between the budget and the activity's
    timeout: the attempt is logged as ChannelTimeout (retryable) instead of being cut off by Temporal unlogged."""
    provider = SilentProvider()
    n = AgentNotification(agent_id="monitor", user_id="ada", title="Disk full", channels=[ChannelName.email])
    request = DeliveryRequest(notification=n, channel=ChannelName.email, workflow_id=n.workflow_id)
    with pytest.raises(TransientDeliveryError) as caught:
        await DeliveryService(store, {ChannelName.email: provider}).deliver(request, 1, activity_timeout=1.0)
    assert caught.value.type_name == "ChannelTimeout"
    assert provider.budgets == [provider_timeout(1.0)]
    [logged] = await store.notifications.attempts(n.notification_id)
    assert (logged.result, logged.error_type) == (ChannelStatus.failed, "ChannelTimeout")
