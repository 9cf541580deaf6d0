"""Web Push with the real pywebpush against a loopback push service; the test decrypts as the browser would."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.push import PushChannel, PushHub
from herald.adapters.channels.webpush import (
    ELLIPSIS,
    MAX_PAYLOAD_BYTES,
    MAX_RETRY_AFTER_SECONDS,
    WEBPUSH_MAX_BODY_BYTES,
    Outcome,
    PushAttempt,
    WebPushSender,
    classify_status,
    subscription_keys_problem,
    summarize,
    topic,
    webpush_payload,
)
from herald.adapters.store import Store
from herald.adapters.vapid import application_server_key, generate_vapid_keys
from herald.domain.errors import PermanentDeliveryError, RecipientNotConnected, TransientDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority, PushSubscription
from tests.fakes.webpush import HANG, Browser, FakePushService, push_service, unb64url, verify_vapid

SUBJECT = "mailto:ops@herald.test"
TTL = 3600
VAPID = generate_vapid_keys()


@pytest.fixture
async def service() -> AsyncIterator[FakePushService]:
    async with push_service() as fake:
        yield fake


@pytest.fixture
async def other_service() -> AsyncIterator[FakePushService]:
    async with push_service() as fake:
        yield fake


@pytest.fixture
async def sender(store: Store) -> AsyncIterator[WebPushSender]:
    sender = WebPushSender(
        VAPID.private_key,
        book=store.users,
        subject=SUBJECT,
        ttl=TTL,
        timeout=2.0,
        link_base="https://herald.test/",
        allow_private=True,
    )
    yield sender
    await sender.aclose()


def message(user_id: str, **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {"agent_id": "monitor", "user_id": user_id, "title": "Disk full", "body": "98% on db-1"}
    values.update(fields)
    n = AgentNotification(**values)
    return OutboundMessage(n, ChannelName.push, f"{n.workflow_id}/push", Contact())


async def subscribe(store: Store, user_id: str, endpoint: str) -> Browser:
    browser = Browser()
    await store.users.add_push_subscription(user_id, browser.subscription(endpoint))
    return browser


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def endpoints(store: Store, user_id: str) -> list[str]:
    return [s.endpoint for s in await store.users.push_subscriptions(user_id)]


# --- against the fake push service ---------------------------------------------------------------


async def test_push_is_encrypted_for_the_browser_and_signed_with_vapid(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    endpoint = service.endpoint()
    browser = await subscribe(store, uid, endpoint)
    msg = message(uid, priority=Priority.high)

    result = await sender.send(msg)

    [request] = service.received(endpoint)
    assert result.provider_message_id == f"{service.origin}/m/1"
    assert request.headers["ttl"] == str(TTL)
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["urgency"] == "high"
    assert request.headers["topic"] == topic(msg.idempotency_key)
    assert browser.decrypt(request.body) == {
        "type": "notification",
        "notification_id": msg.notification.notification_id,
        "agent_id": "monitor",
        "priority": "high",
        "title": "Disk full",
        "body": "98% on db-1",
        "url": f"https://herald.test/v1/notifications/{msg.notification.notification_id}",
    }
    vapid = verify_vapid(request.headers["authorization"])
    assert vapid.public_key == VAPID.public_key
    assert vapid.header["alg"] == "ES256"
    assert vapid.claims["aud"] == service.origin
    assert vapid.claims["sub"] == SUBJECT
    assert time.time() < vapid.claims["exp"] <= time.time() + 24 * 3600


async def test_a_replacement_goes_under_the_replaced_messages_topic_as_resolved(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    """A resolve's push (OutboundMessage.replaces): the Topic of the push it replaces, so the push service keeps only
    it for an offline browser, and `type: resolved` under the same notification id (the service worker's tag)."""
    uid = user()
    endpoint = service.endpoint()
    browser = await subscribe(store, uid, endpoint)
    first = message(uid)
    await sender.send(first)
    replacement = dataclasses.replace(
        first,
        notification=first.notification.model_copy(update={"title": "Resolved: Disk full", "body": ""}),
        idempotency_key=f"{first.idempotency_key}/resolved",
        replaces=first.idempotency_key,
    )
    await sender.send(replacement)

    shown, replaced = service.received(endpoint)
    assert replaced.headers["topic"] == shown.headers["topic"] == topic(first.idempotency_key)
    payload = browser.decrypt(replaced.body)
    assert (payload["type"], payload["notification_id"]) == ("resolved", first.notification.notification_id)
    assert payload["title"] == "Resolved: Disk full"
    assert browser.decrypt(shown.body)["type"] == "notification"


async def test_each_push_service_gets_its_own_audience(
    sender: WebPushSender, store: Store, service: FakePushService, other_service: FakePushService
) -> None:
    """pywebpush writes `aud` into the claims dict it is given: a shared dict would sign for the wrong origin."""
    first, second = user(), user()
    a = service.endpoint()
    await subscribe(store, first, a)
    await sender.send(message(first))
    b = other_service.endpoint()
    await subscribe(store, second, b)
    await sender.send(message(second))
    # Both in one send, concurrently.
    a2, b2 = service.endpoint(), other_service.endpoint()
    both = user()
    browser_a, browser_b = await subscribe(store, both, a2), await subscribe(store, both, b2)
    msg = message(both)
    await sender.send(msg)

    assert verify_vapid(service.received(a)[0].headers["authorization"]).claims["aud"] == service.origin
    assert verify_vapid(other_service.received(b)[0].headers["authorization"]).claims["aud"] == other_service.origin
    [request_a], [request_b] = service.received(a2), other_service.received(b2)
    assert verify_vapid(request_a.headers["authorization"]).claims["aud"] == service.origin
    assert verify_vapid(request_b.headers["authorization"]).claims["aud"] == other_service.origin
    assert service.origin != other_service.origin
    assert browser_a.decrypt(request_a.body)["notification_id"] == msg.notification.notification_id
    assert browser_b.decrypt(request_b.body)["notification_id"] == msg.notification.notification_id


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_is_deleted_and_push_falls_through(
    sender: WebPushSender, store: Store, service: FakePushService, status: int
) -> None:
    uid = user()
    endpoint = service.endpoint(status)
    await subscribe(store, uid, endpoint)
    with pytest.raises(RecipientNotConnected) as caught:
        await sender.send(message(uid))
    assert caught.value.type_name == "RecipientNotConnected"
    assert "no live browser subscriptions" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)
    assert len(service.received(endpoint)) == 1
    assert await endpoints(store, uid) == []


async def test_one_gone_and_one_live_delivers_and_drops_the_gone_one(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    gone = service.endpoint(410)
    live = service.endpoint((201, {"Location": "/m/live"}))
    await subscribe(store, uid, gone)
    browser = await subscribe(store, uid, live)
    msg = message(uid)
    result = await sender.send(msg)
    assert result.provider_message_id == "/m/live"
    assert browser.decrypt(service.received(live)[0].body)["title"] == "Disk full"
    assert await endpoints(store, uid) == [live]


async def test_413_is_permanent_and_keeps_the_subscription(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    endpoint = service.endpoint(413)
    await subscribe(store, uid, endpoint)
    with pytest.raises(PermanentDeliveryError) as caught:
        await sender.send(message(uid))
    assert type(caught.value) is PermanentDeliveryError
    assert caught.value.type_name == "WebPushRejected"
    assert "413" in str(caught.value) and "wpush" not in str(caught.value)
    assert await endpoints(store, uid) == [endpoint]


async def test_429_retries_after_the_services_retry_after(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    endpoint = service.endpoint((429, {"Retry-After": "120"}))
    await subscribe(store, uid, endpoint)
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.send(message(uid))
    assert caught.value.retry_after == 120
    assert caught.value.type_name == "WebPushRateLimited"
    assert await endpoints(store, uid) == [endpoint]
    # The retry goes through (the script is spent: 201 now).
    assert (await sender.send(message(uid))).provider_message_id is not None


async def test_5xx_is_transient(sender: WebPushSender, store: Store, service: FakePushService) -> None:
    uid = user()
    endpoint = service.endpoint(500)
    await subscribe(store, uid, endpoint)
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.send(message(uid))
    assert caught.value.retry_after is None
    assert caught.value.type_name == "WebPushUnavailable"
    assert await endpoints(store, uid) == [endpoint]


async def test_a_transient_failure_outweighs_a_gone_one(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    gone, busy = service.endpoint(410), service.endpoint(503)
    await subscribe(store, uid, gone)
    await subscribe(store, uid, busy)
    with pytest.raises(TransientDeliveryError):
        await sender.send(message(uid))
    assert await endpoints(store, uid) == [busy]


async def test_unreachable_and_hanging_services_are_transient(store: Store, service: FakePushService) -> None:
    sender = WebPushSender(VAPID.private_key, book=store.users, subject=SUBJECT, timeout=0.3, allow_private=True)
    try:
        with socket.socket() as sock:  # a loopback port nobody listens on
            sock.bind(("127.0.0.1", 0))
            closed_port = sock.getsockname()[1]
        uid = user()
        await subscribe(store, uid, f"http://127.0.0.1:{closed_port}/wpush/x")
        with pytest.raises(TransientDeliveryError) as caught:
            await sender.send(message(uid))
        assert "unreachable" in str(caught.value) and str(closed_port) not in str(caught.value)

        uid = user()
        await subscribe(store, uid, service.endpoint(HANG))
        with pytest.raises(TransientDeliveryError) as caught:
            await sender.send(message(uid))
        assert "timed out" in str(caught.value)
    finally:
        await sender.aclose()


async def test_no_subscription_is_not_connected(sender: WebPushSender, service: FakePushService) -> None:
    with pytest.raises(RecipientNotConnected):
        await sender.send(message(user()))
    assert service.requests == []


async def test_a_long_body_is_cut_to_fit_the_4096_byte_limit(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    endpoint = service.endpoint()
    browser = await subscribe(store, uid, endpoint)
    body = "é" * 5000  # 10,000 bytes of UTF-8
    await sender.send(message(uid, body=body))
    [request] = service.received(endpoint)
    assert len(request.body) <= WEBPUSH_MAX_BODY_BYTES
    received = browser.decrypt(request.body)
    assert received["body"].endswith(ELLIPSIS)
    assert body.startswith(received["body"].removesuffix(ELLIPSIS))
    assert len(received["body"]) > 1500  # cut to fit, not emptied


async def test_push_channel_uses_web_push_when_nobody_is_connected(
    sender: WebPushSender, store: Store, service: FakePushService
) -> None:
    uid = user()
    endpoint = service.endpoint()
    browser = await subscribe(store, uid, endpoint)
    msg = message(uid)
    result = await PushChannel(PushHub(ack_timeout=1.0), webpush=sender).send(msg)
    assert result.provider_message_id == f"{service.origin}/m/1"
    assert browser.decrypt(service.received(endpoint)[0].body)["notification_id"] == msg.notification.notification_id


# --- construction --------------------------------------------------------------------------------


def test_the_sender_refuses_a_zero_ttl_a_bad_subject_and_a_bad_key(store: Store) -> None:
    with pytest.raises(ValueError, match="TTL"):
        WebPushSender(VAPID.private_key, book=store.users, subject=SUBJECT, ttl=0)
    with pytest.raises(ValueError, match="VAPID_SUBJECT"):
        WebPushSender(VAPID.private_key, book=store.users, subject="ops@herald.test")
    with pytest.raises(ValueError, match="VAPID_PRIVATE_KEY") as caught:
        WebPushSender("not-a-key", book=store.users, subject=SUBJECT)
    assert "not-a-key" not in str(caught.value)


# --- pure functions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, Outcome.delivered),
        (202, Outcome.delivered),
        (204, Outcome.delivered),
        (404, Outcome.gone),
        (410, Outcome.gone),
        (408, Outcome.transient),
        (429, Outcome.transient),
        (500, Outcome.transient),
        (503, Outcome.transient),
        (400, Outcome.permanent),
        (401, Outcome.permanent),
        (403, Outcome.permanent),
        (413, Outcome.permanent),
    ],
)
def test_classify_status(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_summarize() -> None:
    ok = PushAttempt(Outcome.delivered, "answered 201", 201, location="/m/1")
    gone = PushAttempt(Outcome.gone, "answered 410", 410)
    busy = PushAttempt(Outcome.transient, "answered 429", 429, retry_after=30)
    busier = PushAttempt(Outcome.transient, "answered 429", 429, retry_after=90)
    big = PushAttempt(Outcome.permanent, "answered 413", 413)
    assert summarize([gone, ok]).provider_message_id == "/m/1"
    assert summarize([PushAttempt(Outcome.delivered, "answered 201", 201)]).provider_message_id == "webpush:1/1"
    with pytest.raises(TransientDeliveryError) as transient:
        summarize([busy, big, busier, gone])
    assert transient.value.retry_after == 90
    assert "2 answered 429" in str(transient.value)
    with pytest.raises(TransientDeliveryError) as capped:
        summarize([PushAttempt(Outcome.transient, "answered 429", 429, retry_after=86400)])
    assert capped.value.retry_after == MAX_RETRY_AFTER_SECONDS
    with pytest.raises(RecipientNotConnected):
        summarize([gone, gone])
    with pytest.raises(RecipientNotConnected):
        summarize([])
    with pytest.raises(PermanentDeliveryError) as permanent:
        summarize([gone, big])
    assert type(permanent.value) is PermanentDeliveryError


def test_max_payload_is_exactly_what_fits_in_4096_encrypted_bytes() -> None:
    browser = Browser()
    sender_key = ec.generate_private_key(ec.SECP256R1())

    def encrypted_size(n: int) -> int:
        body = http_ece.encrypt(
            b"x" * n, private_key=sender_key, dh=unb64url(browser.p256dh), auth_secret=browser.auth, version="aes128gcm"
        )
        return len(body)

    assert encrypted_size(MAX_PAYLOAD_BYTES) == WEBPUSH_MAX_BODY_BYTES
    assert encrypted_size(MAX_PAYLOAD_BYTES + 1) > WEBPUSH_MAX_BODY_BYTES


def test_payload_keeps_a_short_body_and_cuts_a_long_one() -> None:
    short = message("u1", body="fine")
    assert json.loads(webpush_payload(short))["body"] == "fine"
    assert "url" not in json.loads(webpush_payload(short))

    body = 'line "quoted"\n' * 700  # escapes make the JSON longer than the text
    cut = webpush_payload(message("u1", body=body), "https://h.test")
    assert len(cut.encode()) <= MAX_PAYLOAD_BYTES
    fields = json.loads(cut)
    assert fields["body"].endswith(ELLIPSIS) and body.startswith(fields["body"].removesuffix(ELLIPSIS))
    assert fields["title"] == "Disk full"

    for limit in range(300, 420, 7):  # tight limits: always fits, and cut as late as possible
        payload = webpush_payload(message("u1", body="x" * 500), limit=limit)
        assert len(payload.encode()) <= limit
        kept = len(json.loads(payload)["body"].removesuffix(ELLIPSIS))
        one_more = webpush_payload(message("u1", body="x" * (kept + 1) + ELLIPSIS), limit=10_000)
        assert len(one_more.encode()) > limit


def test_payload_cuts_the_title_when_the_link_leaves_no_room() -> None:
    msg = message("u1", title="T" * 200, body="b" * 1000)
    payload = webpush_payload(msg, "https://h.test/" + "p" * 3600)
    fields = json.loads(payload)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert fields["body"] == ""
    assert fields["title"].endswith(ELLIPSIS) and fields["url"].endswith(msg.notification.notification_id)


def test_topic_is_a_short_stable_base64url_token() -> None:
    key = "notification/abc/push"
    assert topic(key) == topic(key) != topic("notification/abd/push")
    assert len(topic(key)) <= 32
    assert set(topic(key)) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_subscription_keys_problem() -> None:
    good = Browser().subscription("https://push.test/x")
    assert subscription_keys_problem(good) is None

    def with_keys(**keys: str) -> PushSubscription:
        return good.model_copy(update={"keys": good.keys.model_copy(update=keys)})

    assert subscription_keys_problem(with_keys(p256dh="AAAA"))[0] == "keys.p256dh"  # type: ignore[index]
    assert subscription_keys_problem(with_keys(p256dh="B" * 87))[0] == "keys.p256dh"  # type: ignore[index]
    assert subscription_keys_problem(with_keys(auth="c2hvcnQ"))[0] == "keys.auth"  # type: ignore[index]
    assert subscription_keys_problem(with_keys(auth="!!!"))[0] == "keys.auth"  # type: ignore[index]


def test_application_server_key_matches_the_generated_pair() -> None:
    assert application_server_key(VAPID.private_key) == VAPID.public_key


# --- hostile endpoints: the SSRF guard and redirects ---------------------------------------------


async def test_an_endpoint_on_a_loopback_address_is_refused_outside_dev_mode(
    store: Store, service: FakePushService
) -> None:
    """A subscription's endpoint is a URL the browser (so any caller) names. It used to be fetched with a plain
    client: an endpoint on loopback or a private network was posted to, skipping the SSRF guard webhooks use."""
    strict = WebPushSender(VAPID.private_key, book=store.users, subject=SUBJECT, timeout=2.0)
    uid = user()
    endpoint = service.endpoint()
    await subscribe(store, uid, endpoint)
    try:
        with pytest.raises(PermanentDeliveryError) as caught:
            await strict.send(message(uid))
    finally:
        await strict.aclose()
    assert service.requests == []
    assert "refused" in str(caught.value)
    assert "127.0.0.1" not in str(caught.value) and endpoint not in str(caught.value)
    assert await endpoints(store, uid) == [endpoint]  # refused, not gone: the subscription stays


async def test_a_redirect_from_the_push_service_is_not_followed(
    sender: WebPushSender, store: Store, service: FakePushService, other_service: FakePushService
) -> None:
    """A push service answering 307 to another address used to be followed (aiohttp re-posts on a 307), so an
    endpoint could bounce Herald to an address the guard never checked. Now a redirect is an answer like any
    other 3xx: the message is refused and nothing reaches the redirect's target."""
    target = other_service.endpoint()
    uid = user()
    await subscribe(store, uid, service.endpoint((307, {"Location": target})))
    with pytest.raises(PermanentDeliveryError) as caught:
        await sender.send(message(uid))
    assert "answered 307" in str(caught.value)
    assert other_service.requests == []
    assert len(service.requests) == 1
