"""Twilio SMS through the real `twilio` async client against a loopback fake of the Messages API."""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.sms_text import encoding, segments
from herald.adapters.channels.twilio import TwilioSmsChannel, classify_twilio_error, refused_number_reason
from herald.adapters.store import Store
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority
from tests.fakes.http import start_fake
from tests.fakes.twilio import FakeTwilio, TwilioRequest

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-auth-token-for-tests"
SENDER = "+14155550199"
PHONE = "+14155550100"
SERVICE_SID = "MG" + "fedcba9876543210" * 2
CALLBACK = "https://herald.example.com/v1/providers/twilio/status"
LINK_BASE = "https://herald.example.com"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    server, task, fake.port = await start_fake(fake)
    yield fake
    fake.release.set()
    server.should_exit = True
    await task


@pytest.fixture
async def channel(fake: FakeTwilio, store: Store) -> AsyncIterator[TwilioSmsChannel]:
    channel = TwilioSmsChannel(
        ACCOUNT_SID,
        AUTH_TOKEN,
        book=store.users,
        api_base=fake.base_url,
        sender=SENDER,
        status_callback_url=CALLBACK,
        link_base=LINK_BASE,
        timeout=5.0,
    )
    yield channel
    await channel.aclose()


async def message_to(store: Store, contact: Contact | None = None, **notification: Any) -> OutboundMessage:
    user_id = f"user-{uuid.uuid4().hex[:8]}"
    await store.users.put_contact(user_id, contact or Contact(phone=PHONE))
    fields: dict[str, Any] = {
        "agent_id": "monitor",
        "user_id": user_id,
        "title": "Disk full",
        "body": "98% on db-1",
        "priority": Priority.high,
        "channels": [ChannelName.sms],
    }
    fields.update(notification)
    n = AgentNotification(**fields)
    saved = await store.users.get_contact(user_id)
    assert saved is not None
    return OutboundMessage(n, ChannelName.sms, f"notification/{n.notification_id}/sms", saved)


def only_request(fake: FakeTwilio) -> TwilioRequest:
    [request] = fake.requests
    return request


async def test_sends_the_exact_request_and_returns_the_sid(
    channel: TwilioSmsChannel, fake: FakeTwilio, store: Store
) -> None:
    message = await message_to(store)
    result = await channel.send(message)

    request = only_request(fake)
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == expected_auth
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    link = f"{LINK_BASE}/v1/notifications/{message.notification.notification_id}"
    assert request.form == {
        "To": [PHONE],
        "From": [SENDER],
        "Body": [f"[HIGH] Disk full: 98% on db-1\n{link}"],
        "StatusCallback": [CALLBACK],
    }
    assert request.status == 201
    assert result.provider_message_id == fake.sids[0]
    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34


async def test_messaging_service_replaces_the_from_number(fake: FakeTwilio, store: Store) -> None:
    channel = TwilioSmsChannel(
        ACCOUNT_SID, AUTH_TOKEN, book=store.users, api_base=fake.base_url, messaging_service_sid=SERVICE_SID
    )
    try:
        result = await channel.send(await message_to(store, body=""))
    finally:
        await channel.aclose()
    request = only_request(fake)
    # No callback URL and no link base configured: neither is sent.
    assert request.form == {"To": [PHONE], "MessagingServiceSid": [SERVICE_SID], "Body": ["[HIGH] Disk full"]}
    assert result.provider_message_id == fake.sids[0]


def test_a_sender_is_required() -> None:
    class NoBook:
        pass

    with pytest.raises(ValueError, match="TWILIO_FROM") as info:
        TwilioSmsChannel(ACCOUNT_SID, AUTH_TOKEN, book=NoBook())  # type: ignore[arg-type]
    assert "TWILIO_MESSAGING_SERVICE_SID" in str(info.value)


@pytest.mark.parametrize("code", [21211, 21614, 21610])
async def test_refused_number_is_permanent_and_marks_the_contact(
    channel: TwilioSmsChannel, fake: FakeTwilio, store: Store, code: int
) -> None:
    message = await message_to(store)
    fake.fail_next(code, 400)
    with pytest.raises(PermanentDeliveryError) as info:
        await channel.send(message)
    assert info.value.type_name == "PhoneRejected"
    assert str(code) in str(info.value)
    assert PHONE not in str(info.value) and PHONE.lstrip("+") not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    contact = await store.users.get_contact(message.notification.user_id)
    assert contact is not None and contact.phone_rejected == f"twilio error {code}"
    assert len(fake.requests) == 1

    # The next send to that number stops before Twilio is asked.
    again = await message_to(store, contact)
    with pytest.raises(ContactMissing) as refused:
        await channel.send(again)
    text = str(refused.value)
    assert "refused" in text and "new" in text and PHONE not in text
    assert len(fake.requests) == 1


async def test_other_client_errors_are_permanent_without_marking_the_number(
    channel: TwilioSmsChannel, fake: FakeTwilio, store: Store
) -> None:
    message = await message_to(store)
    fake.fail_next(21606, 400)  # the From number can't send: Herald's configuration, not the user's number
    with pytest.raises(PermanentDeliveryError) as info:
        await channel.send(message)
    assert info.value.type_name == "TwilioRejected"
    assert "21606" in str(info.value)
    contact = await store.users.get_contact(message.notification.user_id)
    assert contact is not None and contact.phone_rejected is None


async def test_rate_limit_retries_after_what_twilio_asks(
    channel: TwilioSmsChannel, fake: FakeTwilio, store: Store
) -> None:
    message = await message_to(store)
    fake.fail_next(20429, 429, {"Retry-After": "7"})
    with pytest.raises(TransientDeliveryError) as info:
        await channel.send(message)
    assert info.value.type_name == "TwilioRateLimited"
    assert info.value.retry_after == 7.0
    # The retry goes through.
    result = await channel.send(message)
    assert result.provider_message_id == fake.sids[0]
    assert [r.status for r in fake.requests] == [429, 201]


async def test_server_errors_retry(channel: TwilioSmsChannel, fake: FakeTwilio, store: Store) -> None:
    message = await message_to(store)
    fake.fail_next(20500, 503)
    with pytest.raises(TransientDeliveryError) as info:
        await channel.send(message)
    assert info.value.type_name == "TwilioUnavailable"
    assert info.value.retry_after is None
    contact = await store.users.get_contact(message.notification.user_id)
    assert contact is not None and contact.phone_rejected is None


async def test_wrong_credentials_are_permanent(fake: FakeTwilio, store: Store) -> None:
    channel = TwilioSmsChannel(ACCOUNT_SID, "not-the-token", book=store.users, api_base=fake.base_url, sender=SENDER)
    try:
        with pytest.raises(PermanentDeliveryError) as info:
            await channel.send(await message_to(store))
    finally:
        await channel.aclose()
    assert info.value.type_name == "TwilioAuth"
    assert "not-the-token" not in str(info.value)
    assert [r.status for r in fake.requests] == [401]


async def test_missing_phone_is_contact_missing(channel: TwilioSmsChannel, fake: FakeTwilio, store: Store) -> None:
    message = await message_to(store, Contact(email="ada@example.com"))
    with pytest.raises(ContactMissing):
        await channel.send(message)
    assert fake.requests == []


async def test_long_body_is_cut_to_two_segments_with_the_link(
    channel: TwilioSmsChannel, fake: FakeTwilio, store: Store
) -> None:
    body = " ".join(f"word{i}" for i in range(200))
    message = await message_to(store, body=body)
    await channel.send(message)
    sent = only_request(fake).one("Body")
    assert sent is not None
    link = f"{LINK_BASE}/v1/notifications/{message.notification.notification_id}"
    assert sent.startswith("[HIGH] Disk full: word0 word1")
    assert sent.endswith(f"...\n{link}")
    assert encoding(sent) == "GSM-7"
    assert segments(sent) == 2
    # Cut at a word boundary: the last word before the ellipsis is whole.
    last_word = sent.removesuffix(f"...\n{link}").rsplit(" ", 1)[-1]
    assert last_word in body.split(" ")


async def test_unicode_body_counts_as_ucs2(channel: TwilioSmsChannel, fake: FakeTwilio, store: Store) -> None:
    body = "Сервер базы данных переполнен, диск заполнен на 98 процентов " * 4
    message = await message_to(store, body=body)
    await channel.send(message)
    sent = only_request(fake).one("Body")
    assert sent is not None
    assert encoding(sent) == "UCS-2"
    assert segments(sent) == 2
    assert len(sent) <= 2 * 67  # a GSM-7 count would have allowed 306
    assert sent.endswith(f"…\n{LINK_BASE}/v1/notifications/{message.notification.notification_id}")


async def test_connection_refused_is_transient(store: Store) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens there any more.
    channel = TwilioSmsChannel(
        ACCOUNT_SID, AUTH_TOKEN, book=store.users, api_base=f"http://127.0.0.1:{port}", sender=SENDER
    )
    try:
        with pytest.raises(TransientDeliveryError) as info:
            await channel.send(await message_to(store))
    finally:
        await channel.aclose()
    assert info.value.type_name == "TwilioUnreachable"


async def test_no_answer_times_out_as_transient(fake: FakeTwilio, store: Store) -> None:
    fake.hang = True
    channel = TwilioSmsChannel(
        ACCOUNT_SID, AUTH_TOKEN, book=store.users, api_base=fake.base_url, sender=SENDER, timeout=0.2
    )
    try:
        with pytest.raises(TransientDeliveryError) as info:
            await channel.send(await message_to(store))
    finally:
        await channel.aclose()
    assert info.value.type_name == "TwilioTimeout"


@pytest.mark.parametrize(
    ("status", "code", "kind", "type_name"),
    [
        (400, 21211, PermanentDeliveryError, "PhoneRejected"),
        (400, 21610, PermanentDeliveryError, "PhoneRejected"),
        (400, 21614, PermanentDeliveryError, "PhoneRejected"),
        (400, 21606, PermanentDeliveryError, "TwilioRejected"),
        (404, 20404, PermanentDeliveryError, "TwilioRejected"),
        (401, 20003, PermanentDeliveryError, "TwilioAuth"),
        (429, 20429, TransientDeliveryError, "TwilioRateLimited"),
        (400, 20429, TransientDeliveryError, "TwilioRateLimited"),
        (500, 20500, TransientDeliveryError, "TwilioUnavailable"),
        (503, None, TransientDeliveryError, "TwilioUnavailable"),
    ],
)
def test_classify_twilio_error(status: int, code: int | None, kind: type, type_name: str) -> None:
    error = classify_twilio_error(status, code, retry_after=3.0)
    assert type(error) is kind
    assert error.type_name == type_name
    if isinstance(error, TransientDeliveryError):
        assert error.retry_after == 3.0


def test_only_number_errors_mark_the_contact() -> None:
    assert refused_number_reason(21211) == "twilio error 21211"
    assert refused_number_reason(21606) is None
    assert refused_number_reason(None) is None
