"""One subscription event's POST (herald/services/subscriptions.py): signed like a webhook, and the URL checked
against the SSRF guard again at send time (a host that moved inward since it was saved is refused for good)."""

from __future__ import annotations

from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from herald.adapters.store import Store
from herald.domain.errors import PermanentDeliveryError
from herald.domain.subscriptions import heartbeat_missed_event, saved
from herald.models import SubscriptionEventType, SubscriptionInput, SubscriptionPostResult, utcnow
from herald.services.callbacks import AgentCallbacks
from herald.services.subscriptions import SubscriptionService
from tests.conftest import WEBHOOK_SECRET
from tests.fakes.http import FakeHTTPServer


async def put(store: Store, url: str) -> None:
    body = SubscriptionInput(url=url, events=[SubscriptionEventType.heartbeat_missed])
    await store.subscriptions.put_subscription(saved("hb", body, "admin", utcnow(), None))


async def test_a_post_is_signed_and_gone_once_deleted(store: Store, tmp_path: Path, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script("/sub-post", 200)
    await put(store, url)
    callbacks = AgentCallbacks(WEBHOOK_SECRET, tmp_path, allow_private=True, timeout=2.0)
    service = SubscriptionService(store, callbacks, allow_private=True)
    missed = heartbeat_missed_event("heartbeat/deploy-bot/nightly", "r.1", utcnow())
    assert missed is not None
    assert await service.post("hb", missed) is SubscriptionPostResult.sent
    [request] = fake_http.received("/sub-post")
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    payload = Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert payload["type"] == "heartbeat.missed" and payload["data"]["heartbeat"] == "nightly"
    assert headers["webhook-id"] == missed.id
    await store.subscriptions.delete_subscription("hb")
    assert await service.post("hb", missed) is SubscriptionPostResult.gone


async def test_an_inward_url_is_refused_at_send_time(store: Store, tmp_path: Path, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script("/sub-inward", 200)
    await put(store, url)  # saved as a dev stack saves it, then sent by a worker outside dev mode
    service = SubscriptionService(store, AgentCallbacks(WEBHOOK_SECRET, tmp_path), allow_private=False)
    missed = heartbeat_missed_event("heartbeat/deploy-bot/nightly", "r.2", utcnow())
    assert missed is not None
    with pytest.raises(PermanentDeliveryError, match="loopback") as refused:
        await service.post("hb", missed)
    assert refused.value.type_name == "SubscriptionUrlRefused"
    assert fake_http.received("/sub-inward") == []
