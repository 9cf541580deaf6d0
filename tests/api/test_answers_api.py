"""Answer routes where nothing reaches a workflow: links off, bad links, Twilio's inbound webhook refusing
or finding no question, and the WebSocket's `respond` message shape. (Answers that arrive: tests/workflows.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from twilio.request_validator import RequestValidator

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.api.ws import ClientMessage, MalformedMessage, parse_client_message
from herald.domain.answers import AnswerToken, sign_token
from herald.models import utcnow
from tests.conftest import make_settings

PUBLIC_URL = "https://herald.example.com"
AUTH_TOKEN = "twilio-inbound-token"
SECRET = "answer-secret"


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path / "herald",
        public_url=PUBLIC_URL,
        answer_secret=SECRET,
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
    )
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
        yield client


async def test_answer_links_are_off_without_a_secret(tmp_path: Path, store: Store) -> None:
    app = create_app(make_settings(tmp_path / "herald"), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
        response = await client.post("/v1/answers/abc.def", json={"action_id": "approve"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "answer_links_off"


async def test_bad_links_are_refused_before_anything_is_looked_up(api: httpx.AsyncClient) -> None:
    forged = await api.post("/v1/answers/abc.def", json={"action_id": "approve"})
    assert (forged.status_code, forged.json()["error"]["code"]) == (403, "link_forged")
    expired = sign_token(SECRET.encode(), AnswerToken("n1", "approve", int(utcnow().timestamp()) - 5, "nonce"))
    page = await api.get(f"/v1/answers/{expired}")
    assert page.status_code == 410 and "this answer link has expired" in page.text
    too_long = await api.get("/v1/answers/" + "a" * 600)
    assert too_long.status_code == 422


def signed(form: dict[str, str], token: str = AUTH_TOKEN) -> dict[str, str]:
    url = f"{PUBLIC_URL}/v1/providers/twilio/inbound"
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


async def test_twilio_inbound_checks_the_signature_and_answers_in_twiml(api: httpx.AsyncClient) -> None:
    form = {"From": "+14155550100", "Body": "1", "MessageSid": "SM1"}
    missing = await api.post("/v1/providers/twilio/inbound", data=form)
    assert (missing.status_code, missing.json()["error"]["field"]) == (403, "X-Twilio-Signature")
    forged = await api.post("/v1/providers/twilio/inbound", data=form, headers=signed(form, "another-token"))
    assert forged.status_code == 403
    as_json = await api.post("/v1/providers/twilio/inbound", json=form, headers=signed(form))
    assert as_json.status_code == 415
    nothing = await api.post("/v1/providers/twilio/inbound", data=form, headers=signed(form))
    assert nothing.status_code == 200 and nothing.headers["content-type"].startswith("application/xml")
    assert nothing.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<Message>Herald: there is no open question for this number.</Message></Response>"
    )


def test_the_websocket_respond_message() -> None:
    message = parse_client_message('{"type": "respond", "notification_id": "n1", "action_id": "approve"}')
    assert message == ClientMessage("respond", "n1", "approve")
    with pytest.raises(MalformedMessage, match="action_id: required"):
        parse_client_message('{"type": "respond", "notification_id": "n1"}')
    with pytest.raises(MalformedMessage, match="action_id: required"):
        parse_client_message('{"type": "respond", "notification_id": "n1", "action_id": "no spaces"}')
    with pytest.raises(MalformedMessage, match="notification_id: required"):
        parse_client_message('{"type": "respond", "action_id": "approve"}')
