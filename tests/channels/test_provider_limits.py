"""Hostile providers: a Retry-After that would park a channel for days, and a push client that never acks.

A receiver (webhook, Twilio, an agent's callback) chooses its own Retry-After; Herald waits at most
MAX_RETRY_AFTER_SECONDS. The push hub keeps one entry per frame awaiting an ack: none after the wait ends,
and never more than its bound.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from activities.delivery import to_application_error
from herald.adapters.channels.base import MAX_RETRY_AFTER_SECONDS, OutboundMessage, retry_after_seconds
from herald.adapters.channels.push import PushChannel, PushHub
from herald.adapters.channels.twilio import TwilioSmsChannel
from herald.adapters.channels.webhook import WebhookChannel
from herald.adapters.store import Store
from herald.domain.errors import PushNotAcked, TransientDeliveryError
from herald.models import AgentCallback, AgentNotification, ChannelName, Contact
from herald.services.callbacks import AgentCallbacks
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.http import FakeHTTPServer, start_fake
from tests.fakes.twilio import FakeTwilio

TEN_DAYS = str(10 * 24 * 3600)
FAR_DATE = format_datetime(datetime.now(UTC) + timedelta(days=30), usegmt=True)
ACCOUNT_SID = "AC" + "ab12" * 8
AUTH_TOKEN = "twilio-limits-token"


def message(
    channel: ChannelName, contact: Contact, timeout: float | None = None, user_id: str | None = None
) -> OutboundMessage:
    user_id = user_id or f"user-{uuid.uuid4().hex[:8]}"
    n = AgentNotification(agent_id="monitor", user_id=user_id, title="Disk full")
    return OutboundMessage(n, channel, f"{n.workflow_id}/{channel.value}", contact, timeout=timeout)


@pytest.mark.parametrize(
    "retry_after", [TEN_DAYS, FAR_DATE, "1e308", "inf"], ids=["ten-days", "a-month-out", "1e308", "inf"]
)
async def test_a_webhook_receivers_retry_after_is_capped(
    retry_after: str, store: Store, fake_http: FakeHTTPServer
) -> None:
    """A webhook receiver answering 429 with Retry-After of ten days (or a date a month out, or infinity) used to be
    obeyed as it stood: the channel's next try waited that long. Now it waits at most MAX_RETRY_AFTER_SECONDS."""
    path = f"/hook/{uuid.uuid4().hex[:8]}"
    url = fake_http.script(path, (429, {"Retry-After": retry_after}))
    channel = WebhookChannel(WEBHOOK_SECRET, book=store.users, timeout=2.0, allow_private=True)
    try:
        with pytest.raises(TransientDeliveryError) as caught:
            await channel.send(message(ChannelName.webhook, Contact(webhook_url=url)))
    finally:
        await channel.aclose()
    assert caught.value.retry_after == MAX_RETRY_AFTER_SECONDS
    # And so is the delay Temporal is told to wait before its retry.
    error = to_application_error(caught.value, 1)
    assert error.next_retry_delay == timedelta(seconds=MAX_RETRY_AFTER_SECONDS)


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    server, task, fake.port = await start_fake(fake)
    yield fake
    fake.release.set()
    server.should_exit = True
    await task


async def test_twilios_retry_after_is_capped(twilio: FakeTwilio, store: Store) -> None:
    """Twilio's 429 with Retry-After of ten days used to set the next try ten days out."""
    channel = TwilioSmsChannel(
        ACCOUNT_SID, AUTH_TOKEN, book=store.users, api_base=twilio.base_url, sender="+14155550199", timeout=5.0
    )
    twilio.fail_next(20429, 429, {"Retry-After": TEN_DAYS})
    try:
        with pytest.raises(TransientDeliveryError) as caught:
            await channel.send(message(ChannelName.sms, Contact(phone="+14155550100")))
    finally:
        await channel.aclose()
    assert caught.value.type_name == "TwilioRateLimited"
    assert caught.value.retry_after == MAX_RETRY_AFTER_SECONDS


async def test_an_agent_callbacks_retry_after_is_capped(tmp_path: Path, fake_http: FakeHTTPServer) -> None:
    """An agent's callback endpoint answering 429 with Retry-After of ten days used to hold the callback that long."""
    path = f"/callback/{uuid.uuid4().hex[:8]}"
    url = fake_http.script(path, (429, {"Retry-After": TEN_DAYS}))
    callbacks = AgentCallbacks(WEBHOOK_SECRET, tmp_path, allow_private=True, timeout=2.0)
    callback = AgentCallback(
        url=url, notification_id="n-cb", workflow_id="notification/n-cb", agent_id="deploy", status="expired"
    )
    with pytest.raises(TransientDeliveryError) as caught:
        await callbacks.send(callback, datetime.now(UTC), activity_timeout=5.0)
    assert caught.value.retry_after == MAX_RETRY_AFTER_SECONDS
    assert len(fake_http.received(path)) == 1


def test_retry_after_parsing_is_bounded() -> None:
    assert MAX_RETRY_AFTER_SECONDS == 600.0, "the README promises Retry-After is obeyed up to 600 s"
    assert retry_after_seconds("600") == 600.0 and retry_after_seconds("601") == 600.0
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds(TEN_DAYS) == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds("9" * 10_000) == MAX_RETRY_AFTER_SECONDS
    assert retry_after_seconds("soon") is None


# --- the push hub's pending acks -----------------------------------------------------------------


async def test_an_ack_timeout_leaves_nothing_pending() -> None:
    """A frame nobody acked used to stay in the hub's pending map after its wait ended, one entry per frame: a
    client that reads but never acks grew the process's memory for as long as it stayed connected."""
    hub = PushHub(ack_timeout=0.05)
    with hub.connect("ada") as connection:
        for i in range(20):
            with pytest.raises(PushNotAcked):
                await hub.publish("ada", f"n-{i}", {"type": "notification", "notification_id": f"n-{i}"})
        assert hub._pending == {}
        # A late ack finds nothing to resolve, and is refused.
        assert connection.ack("n-3") is False
        assert hub._pending == {}


async def test_an_acked_frame_and_a_joined_retry_leave_nothing_pending() -> None:
    """Two publishes of one frame (a retry while the first still waits) share its ack; both leave no entry behind."""
    hub = PushHub(ack_timeout=5.0)
    with hub.connect("ada") as connection:
        first = asyncio.create_task(hub.publish("ada", "n-1", {"notification_id": "n-1"}))
        second = asyncio.create_task(hub.publish("ada", "n-1", {"notification_id": "n-1"}))
        while len(hub._pending) < 1 or connection._frames.qsize() < 2:
            await asyncio.sleep(0.01)
        assert connection.ack("n-1") is True
        assert await first == await second == connection.id
        assert hub._pending == {}


async def test_the_pending_bound_holds() -> None:
    """At most max_pending frames wait for an ack; one more is refused at once (so the workflow sends email)
    instead of growing the hub, and the room comes back when a wait ends."""
    hub = PushHub(ack_timeout=30.0, max_pending=3)
    with hub.connect("ada") as connection:
        waiting = [asyncio.create_task(hub.publish("ada", f"n-{i}", {"notification_id": f"n-{i}"})) for i in range(3)]
        while len(hub._pending) < 3:
            await asyncio.sleep(0.01)
        with pytest.raises(PushNotAcked) as caught:
            await hub.publish("ada", "n-extra", {"notification_id": "n-extra"})
        assert "limit" in str(caught.value)
        assert len(hub._pending) == 3
        assert connection.ack("n-0") is True
        assert await waiting[0] == connection.id
        # Room again: the next frame waits (and is acked) normally.
        extra = asyncio.create_task(hub.publish("ada", "n-extra", {"notification_id": "n-extra"}))
        while ("ada", "n-extra") not in hub._pending:
            await asyncio.sleep(0.01)
        assert len(hub._pending) <= 3
        assert connection.ack("n-extra") is True
        assert await extra == connection.id
        for task in waiting[1:]:
            task.cancel()
        await asyncio.gather(*waiting[1:], return_exceptions=True)
        assert hub._pending == {}


async def test_the_push_channel_waits_for_an_ack_no_longer_than_its_send_may_take() -> None:
    """The hub's ack timeout (HERALD_PUSH_ACK_TIMEOUT_SECONDS) used to be the wait even when it outlasted the
    delivery activity: Temporal then cut the send off and retried it, and the client got the frame twice."""
    hub = PushHub(ack_timeout=60.0)
    with hub.connect("ada") as connection:
        msg = message(ChannelName.push, Contact(), timeout=0.1, user_id="ada")
        with pytest.raises(PushNotAcked) as caught:
            await PushChannel(hub).send(msg)
        assert "within 0.1s" in str(caught.value)
        assert connection._frames.qsize() == 1
        assert hub._pending == {}
