"""The fakes judge every request by the providers' published OpenAPI descriptions (tests/fakes/specs/), and
what Herald sends passes: a request the real SendGrid or Twilio would refuse fails the tests that send it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.render import email_payload, sms_payload
from herald.adapters.channels.sendgrid import SendGridChannel
from herald.domain.errors import PermanentDeliveryError
from herald.models import AgentNotification, ChannelName, Contact, Priority
from tests.fakes.http import start_fake
from tests.fakes.openapi import SENDGRID_MAIL_SEND, TWILIO_CREATE_MESSAGE, twilio_conditional_problems
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.faults.ledger import Ledger

ACCOUNT_SID = "AC" + "5bec" * 8
AUTH_TOKEN = "spec-token"


@pytest.fixture
async def sendgrid() -> AsyncIterator[FakeSendGrid]:
    fake = FakeSendGrid()
    server, task, fake.port = await start_fake(fake)
    yield fake
    server.should_exit = True
    await task


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)
    server, task, fake.port = await start_fake(fake)
    yield fake
    server.should_exit = True
    await task


def message(**fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {"notification_id": "n-1", "agent_id": "bot", "user_id": "ada", "title": "Hi"}
    values.update(fields)
    n = AgentNotification.model_validate(values)
    contact = Contact(email="ada@example.com", phone="+14155550100")
    return OutboundMessage(n, ChannelName.email, "notification/n-1/email", contact, unsubscribe_url="https://h/u/t")


def old_payload() -> dict[str, Any]:
    """What Herald sent before: its idempotency key as an object in the top-level `custom_args`."""
    payload = email_payload(message(), "herald@example.com")
    payload["custom_args"] = payload["personalizations"][0].pop("custom_args")
    return payload


async def test_the_sendgrid_fake_refuses_a_top_level_custom_args_object(sendgrid: FakeSendGrid) -> None:
    async with httpx.AsyncClient(base_url=sendgrid.host) as client:
        response = await client.post("/v3/mail/send", json=old_payload())
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["custom_args"]


async def test_the_sendgrid_fake_refuses_a_sender_sendgrid_refuses(sendgrid: FakeSendGrid) -> None:
    channel = SendGridChannel("SG.key", host=sendgrid.host, sender="herald@localhost")
    with pytest.raises(PermanentDeliveryError, match=r"\(400\) \(fields: from.email\)"):
        await channel.send(message())


async def test_the_fault_tests_ledger_refuses_what_sendgrids_spec_refuses_and_counts_what_it_accepts() -> None:
    """The fault tests' SendGrid (tests/faults/ledger.py) judges bodies as the fakes do, not just counts them."""
    ledger = Ledger()
    server, task, ledger.port = await start_fake(ledger)
    try:
        refused = SendGridChannel("SG.key", host=ledger.sendgrid_host, sender="herald@localhost")
        with pytest.raises(PermanentDeliveryError, match=r"\(400\) \(fields: from.email\)"):
            await refused.send(message())
        async with httpx.AsyncClient(base_url=ledger.sendgrid_host) as client:
            response = await client.post("/v3/mail/send", json=old_payload())
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == ["custom_args"]
        assert ledger.accepted == {}, "a refused request is not counted as delivered"
        assert [[name for name, _ in problems] for problems in ledger.malformed] == [["from.email"], ["custom_args"]]

        await SendGridChannel("SG.key", host=ledger.sendgrid_host, sender="herald@example.com").send(message())
        assert ledger.accepted == {"notification/n-1/email": 1}
    finally:
        server.should_exit = True
        await task


def test_herald_email_payloads_conform_to_sendgrids_spec() -> None:
    """Before, the key went into the top-level `custom_args` as an object, which the spec types as a string."""
    for priority in Priority:
        payload = email_payload(message(priority=priority, body="b"), "Herald <herald@example.com>", "https://h/n")
        assert SENDGRID_MAIL_SEND.problems(payload) == []
        assert payload["from"] == {"email": "herald@example.com", "name": "Herald"}
        assert payload["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert SENDGRID_MAIL_SEND.problems(old_payload()) != []


async def test_the_twilio_fake_refuses_what_twilios_spec_refuses(twilio: FakeTwilio) -> None:
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    async with httpx.AsyncClient(base_url=twilio.base_url, auth=auth) as client:
        no_body = await client.post(path, data={"To": "+14155550100", "From": "+14155550199"})
        no_sender = await client.post(path, data={"To": "+14155550100", "Body": "hi"})
        bad_sid = await client.post(path, data={"To": "+14155550100", "MessagingServiceSid": "MG1", "Body": "hi"})
        bad_to = await client.post(path, data={"To": "not a number!", "From": "+14155550199", "Body": "hi"})
        fine = await client.post(path, data={"To": "+14155550100", "From": "+14155550199", "Body": "hi"})
    assert (no_body.status_code, no_body.json()["code"]) == (400, 21602)
    assert (no_sender.status_code, no_sender.json()["code"]) == (400, 21603)
    assert (bad_sid.status_code, bad_sid.json()["code"]) == (400, 20001)
    assert bad_to.status_code == 400 and "To" in bad_to.json()["message"]
    assert fine.status_code == 201
    assert [r.problems != [] for r in twilio.requests] == [True, True, True, True, False]


def test_herald_sms_payloads_conform_to_twilios_spec() -> None:
    payload = sms_payload(message(), "+14155550199", "https://h/n")
    form = TWILIO_CREATE_MESSAGE.form({k: [v] for k, v in payload.items() if v is not None})
    assert TWILIO_CREATE_MESSAGE.problems(form) == [] and twilio_conditional_problems(form) == []
