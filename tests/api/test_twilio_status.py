"""Twilio's status callbacks: signed exactly as Twilio signs them, recorded against the attempt that sent the SMS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from herald.adapters.store import Store, schema
from herald.api.app import create_app
from herald.models import ChannelName, ChannelStatus, DeliveryAttempt
from tests.conftest import make_settings

TOKEN = "twilio-auth-token-for-tests"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
PUBLIC_URL = "https://herald.example.com"
PATH = "/v1/providers/twilio/status"
URL = PUBLIC_URL + PATH
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path / "herald", TWILIO_AUTH_TOKEN=TOKEN, TWILIO_ACCOUNT_SID=ACCOUNT_SID, public_url=PUBLIC_URL
    )
    app = create_app(settings, store=store)
    # The API sits behind a proxy: it is reached as http://internal, but Twilio signed the public URL.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:8000") as client:
        yield client


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


async def sent_attempt(store: Store, sid: str) -> str:
    """Log one delivered SMS attempt whose provider message id is `sid`; return its notification id."""
    notification_id = f"n-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    await store.notifications.record_attempt(
        DeliveryAttempt(
            notification_id=notification_id,
            workflow_id=f"notification/{notification_id}",
            channel=ChannelName.sms,
            attempt=1,
            idempotency_key=f"notification/{notification_id}/sms",
            result=ChannelStatus.delivered,
            provider_message_id=sid,
            started_at=now,
            finished_at=now,
        )
    )
    return notification_id


def callback(sid: str, status: str, **extra: str) -> dict[str, str]:
    fields = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+14155550199",
        "To": "+14155550100",
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
    }
    fields.update(extra)
    return fields


async def post_signed(
    api: httpx.AsyncClient, params: dict[str, str], *, signed_for: str = URL, token: str = TOKEN, query: str = ""
) -> httpx.Response:
    url = signed_for + (f"?{query}" if query else "")
    signature = RequestValidator(token).compute_signature(url, params)
    return await api.post(
        PATH + (f"?{query}" if query else ""),
        content=urlencode(params),
        headers={"content-type": FORM, "X-Twilio-Signature": signature},
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


@pytest.mark.parametrize(("status", "error_code"), [("delivered", None), ("undelivered", "30003"), ("failed", "30008")])
async def test_final_status_is_recorded_against_the_attempt(
    api: httpx.AsyncClient, store: Store, status: str, error_code: str | None
) -> None:
    sid, other = new_sid(), new_sid()
    notification_id = await sent_attempt(store, sid)
    other_id = await sent_attempt(store, other)
    extra = {"ErrorCode": error_code} if error_code else {}
    response = await post_signed(api, callback(sid, status, **extra))
    assert response.status_code == 204, response.text
    assert response.content == b""
    [attempt] = await store.notifications.attempts(notification_id)
    assert (attempt.provider_status, attempt.provider_error_code) == (status, error_code)
    [untouched] = await store.notifications.attempts(other_id)
    assert untouched.provider_status is None


async def test_signed_url_with_a_query_string(api: httpx.AsyncClient, store: Store) -> None:
    sid = new_sid()
    notification_id = await sent_attempt(store, sid)
    response = await post_signed(api, callback(sid, "delivered"), query="tenant=a")
    assert response.status_code == 204, response.text
    [attempt] = await store.notifications.attempts(notification_id)
    assert attempt.provider_status == "delivered"


async def test_interim_statuses_do_not_overwrite_a_final_one(api: httpx.AsyncClient, store: Store) -> None:
    sid = new_sid()
    notification_id = await sent_attempt(store, sid)
    assert (await post_signed(api, callback(sid, "delivered"))).status_code == 204
    # Twilio doesn't promise order: a late "sent" arrives after "delivered".
    assert (await post_signed(api, callback(sid, "sent"))).status_code == 204
    [attempt] = await store.notifications.attempts(notification_id)
    assert attempt.provider_status == "delivered"


async def test_bad_signature_is_refused_and_nothing_recorded(api: httpx.AsyncClient, store: Store) -> None:
    sid = new_sid()
    notification_id = await sent_attempt(store, sid)
    response = await post_signed(api, callback(sid, "failed"), token="some-other-token")
    error = assert_error(response, 403, "invalid_signature")
    assert error["field"] == "X-Twilio-Signature"
    # A valid signature over different parameters: the body was tampered with.
    signature = RequestValidator(TOKEN).compute_signature(URL, callback(sid, "delivered"))
    tampered = await api.post(
        PATH,
        content=urlencode(callback(sid, "failed")),
        headers={"content-type": FORM, "X-Twilio-Signature": signature},
    )
    assert_error(tampered, 403, "invalid_signature")
    [attempt] = await store.notifications.attempts(notification_id)
    assert attempt.provider_status is None


async def test_missing_signature_is_refused(api: httpx.AsyncClient, store: Store) -> None:
    sid = new_sid()
    notification_id = await sent_attempt(store, sid)
    response = await api.post(PATH, content=urlencode(callback(sid, "delivered")), headers={"content-type": FORM})
    assert_error(response, 403, "invalid_signature")
    [attempt] = await store.notifications.attempts(notification_id)
    assert attempt.provider_status is None


@pytest.mark.parametrize(
    "signed_for",
    [
        "http://internal:8000" + PATH,  # the URL the app was reached on, not the public one
        "https://attacker.example.com" + PATH,
        PUBLIC_URL + "/v1/providers/twilio/other",
    ],
)
async def test_signature_for_another_url_is_refused(api: httpx.AsyncClient, store: Store, signed_for: str) -> None:
    sid = new_sid()
    notification_id = await sent_attempt(store, sid)
    response = await post_signed(api, callback(sid, "delivered"), signed_for=signed_for)
    assert_error(response, 403, "invalid_signature")
    [attempt] = await store.notifications.attempts(notification_id)
    assert attempt.provider_status is None


async def test_unknown_sid_is_answered_and_nothing_recorded(
    api: httpx.AsyncClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sid = new_sid()
    caplog.set_level("DEBUG")
    response = await post_signed(api, callback(sid, "delivered"))
    assert response.status_code == 204, response.text
    async with store.engine.connect() as conn:
        receipts = (await conn.execute(sa.select(schema.provider_receipts))).all()
    assert receipts == []
    # The phone numbers in the form never reach a log.
    assert "+14155550100" not in caplog.text and "+14155550199" not in caplog.text


async def test_json_body_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post(PATH, json={"MessageSid": new_sid()}, headers={"X-Twilio-Signature": "x"})
    assert_error(response, 415, "unsupported_media_type")


async def test_missing_message_sid_is_invalid(api: httpx.AsyncClient) -> None:
    params = callback("", "delivered")
    del params["MessageSid"]
    error = assert_error(await post_signed(api, params), 422, "invalid_request")
    assert error["field"] == "MessageSid"


async def test_without_twilio_configured_the_route_says_so(tmp_path: Path, store: Store) -> None:
    app = create_app(make_settings(tmp_path / "herald", public_url=PUBLIC_URL), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal") as client:
        response = await post_signed(client, callback(new_sid(), "delivered"))
    error = assert_error(response, 404, "twilio_not_configured")
    assert "TWILIO_AUTH_TOKEN" in error["message"]
