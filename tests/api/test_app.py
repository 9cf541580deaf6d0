"""The HTTP API against a real worker and dev server: accepted input starts a workflow, bad input starts nothing."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from herald.api.app import create_app
from tests.conftest import Harness, make_settings
from tests.fakes.http import FakeHTTPServer


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        yield client


def body(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"agent_id": "support-agent", "user_id": "user-1", "title": "Deploy finished"}
    values.update(fields)
    return values


def assert_error(response: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    assert error["field"] == field
    assert error["message"]
    return error


async def wait_final(api: httpx.AsyncClient, notification_id: str) -> dict[str, Any]:
    for _ in range(200):
        response = await api.get(f"/v1/notifications/{notification_id}")
        assert response.status_code == 200, response.text
        view = response.json()
        if view["status"] != "pending":
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"notification {notification_id} still pending")


async def test_post_notification_then_read_outcome_with_attempts(api: httpx.AsyncClient) -> None:
    assert (await api.put("/v1/users/user-1/contact", json={"email": "ada@example.com"})).status_code == 200
    response = await api.post("/v1/notifications", json=body(channels=["email"], priority="high"))
    assert response.status_code == 202
    accepted = response.json()
    nid = accepted["notification_id"]
    assert accepted == {
        "notification_id": nid,
        "workflow_id": f"notification/{nid}",
        "status_url": f"/v1/notifications/{nid}",
    }

    view = await wait_final(api, nid)
    assert view["status"] == "delivered"
    assert view["workflow_id"] == f"notification/{nid}"
    email = view["channels"]["email"]
    assert email["status"] == "delivered"
    [attempt] = email["attempts"]
    assert (attempt["attempt"], attempt["result"]) == (1, "delivered")


async def test_repeated_post_with_same_id_is_one_notification(
    api: httpx.AsyncClient, herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """Posted twice at once and once more after it finished: one notification, counted at the receiver.

    It used to count Herald's own delivery log, which a bug in the same code could get wrong the same way."""
    path = f"/same-id/{uuid.uuid4().hex}"
    await api.put("/v1/users/user-1/contact", json={"webhook_url": fake_http.script(path, 204)})
    nid = uuid.uuid4().hex
    first, second = await asyncio.gather(
        *(api.post("/v1/notifications", json=body(notification_id=nid, channels=["webhook"])) for _ in range(2))
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["workflow_id"] == second.json()["workflow_id"] == f"notification/{nid}"
    await wait_final(api, nid)
    again = await api.post("/v1/notifications", json=body(notification_id=nid, channels=["webhook"]))
    assert again.status_code == 202 and again.json()["workflow_id"] == f"notification/{nid}"
    [received] = fake_http.received(path)
    assert received.headers["webhook-id"] == f"notification/{nid}/webhook"
    assert len(await herald.store.notifications.attempts(nid)) == 1


async def test_another_agents_notification_id_is_refused(api: httpx.AsyncClient, herald: Harness) -> None:
    """The id is the agent's idempotency key: reused by another agent, it must not quietly stand for theirs."""
    await api.put("/v1/users/user-1/contact", json={"email": "ada@example.com"})
    nid = uuid.uuid4().hex
    assert (await api.post("/v1/notifications", json=body(notification_id=nid, channels=["email"]))).status_code == 202
    mine = body(notification_id=nid, agent_id="billing-agent", title="Invoice overdue", channels=["email"])
    soon_after = await api.post("/v1/notifications", json=mine)
    await wait_final(api, nid)
    once_finished = await api.post("/v1/notifications", json=mine)
    for response in (soon_after, once_finished):
        error = assert_error(response, 409, "notification_id")
        assert error["code"] == "notification_id_taken"
        assert error["message"] == f"notification_id: {nid} is another agent's notification; choose another id"
    outcome = await herald.client.get_handle(nid).outcome()
    assert outcome.agent_id == "support-agent" and len(await herald.store.notifications.attempts(nid)) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"body": "x" * (10 * 1024 + 1)}, "body"),
        ({"metadata": {"blob": "x" * (16 * 1024)}}, "metadata"),
        ({"channels": ["fax"]}, "channels.0"),
        ({"channels": []}, "channels"),
        ({"priority": "urgent"}, "priority"),
        ({"user_id": "../etc"}, "user_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_notification_is_refused_and_starts_nothing(
    api: httpx.AsyncClient, herald: Harness, fields: dict[str, Any], field: str
) -> None:
    nid = uuid.uuid4().hex
    response = await api.post("/v1/notifications", json=body(notification_id=nid, **fields))
    error = assert_error(response, 422, field)
    assert error["code"] == "invalid_request"
    assert "x" * 50 not in error["message"], "input is not echoed back"
    with pytest.raises(RPCError) as missing:
        await herald.client.temporal.get_workflow_handle(f"notification/{nid}").describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND


async def test_missing_field_and_malformed_json(api: httpx.AsyncClient) -> None:
    assert_error(await api.post("/v1/notifications", json={"agent_id": "a", "user_id": "u"}), 422, "title")
    response = await api.post(
        "/v1/notifications", content=b'{"agent_id": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]["message"]


async def test_preferences_round_trip_and_bad_input_saves_nothing(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/users/user-9/preferences")).json() == {"default": {}, "agents": {}}
    good = {"default": {"push": True, "email": True, "sms": False}, "agents": {"batch-agent": {"email": False}}}
    response = await api.put("/v1/users/user-9/preferences", json=good)
    assert response.status_code == 200
    assert (await api.get("/v1/users/user-9/preferences")).json() == good

    bad = {"default": {"fax": True}}
    assert_error(await api.put("/v1/users/user-9/preferences", json=bad), 422, "default.fax")
    assert_error(await api.put("/v1/users/user-9/preferences", json={"default": {"sms": "maybe"}}), 422, "default.sms")
    assert (await api.get("/v1/users/user-9/preferences")).json() == good, "a refused update changes nothing"


async def test_contact_validation_and_not_found(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/users/nobody/contact"), 404, "user_id")
    assert_error(await api.put("/v1/users/u1/contact", json={"phone": "0155 555"}), 422, "phone")
    assert_error(await api.put("/v1/users/u1/contact", json={"email": "not-an-address"}), 422, "email")
    assert_error(await api.put("/v1/users/u1/contact", json={"webhook_url": "ftp://x"}), 422, "webhook_url")
    for member in ("@ada", "u024be7lh", "C024BE7LH", "U024BE7LH\n", "U" + "A" * 30):
        assert_error(await api.put("/v1/users/u1/contact", json={"slack_user_id": member}), 422, "slack_user_id")
    assert_error(await api.put("/v1/users/u1/contact", json={"telegram_chat_id": "42"}), 422, "telegram_chat_id")
    saved = {"email": "ada@example.com", "phone": "+14155550100", "slack_user_id": "U024BE7LH"}
    assert (await api.put("/v1/users/u1/contact", json=saved)).status_code == 200
    assert (await api.get("/v1/users/u1/contact")).json() == saved


async def test_unknown_notification_route_and_health(api: httpx.AsyncClient) -> None:
    assert_error(await api.get("/v1/notifications/does-not-exist"), 404, "notification_id")
    assert_error(await api.get("/v1/nowhere"), 404, None)
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "store": "ok", "temporal": "ok"}
    assert (await api.get("/openapi.json")).status_code == 200


async def test_contact_webhook_url_refused_outside_dev_mode(herald: Harness) -> None:
    """`herald api` refuses webhook URLs that point inward (SSRF); the saved contact stays as it was."""
    settings = herald.settings.changed(allow_private_webhooks=False)
    app = create_app(settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        saved = {"email": "ada@example.com"}
        assert (await api.put("/v1/users/u2/contact", json=saved)).status_code == 200
        for url, reason in [
            ("http://127.0.0.1:9000/hook", "loopback"),
            ("http://localhost/hook", "loopback"),
            ("https://10.1.2.3/hook", "private"),
            ("http://192.168.0.10/hook", "private"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://[::1]/hook", "loopback"),
            ("http://[::ffff:10.0.0.1]/hook", "private"),
            ("http://0.0.0.0/hook", "non-public"),
        ]:
            error = assert_error(await api.put("/v1/users/u2/contact", json={"webhook_url": url}), 422, "webhook_url")
            assert reason in error["message"]
            assert "HERALD_ALLOW_PRIVATE_WEBHOOKS" in error["message"]
            assert url not in error["message"]
        error = assert_error(
            await api.put("/v1/users/u2/contact", json={"webhook_url": "https://no-such-host.invalid/h"}),
            422,
            "webhook_url",
        )
        assert "does not resolve" in error["message"]
        # Schema-valid, but the standard library can't split them (a bracket with no address, a port out of range):
        # a 422 naming the field, never a 500.
        for url in ("http://[x", "http://example.com:99999/hook"):
            error = assert_error(await api.put("/v1/users/u2/contact", json={"webhook_url": url}), 422, "webhook_url")
            assert url not in error["message"]
        assert (await api.get("/v1/users/u2/contact")).json() == saved


async def test_saving_contact_clears_heralds_marks(api: httpx.AsyncClient, herald: Harness) -> None:
    """A number a provider refused, or a webhook that answered 410, is usable again once the person saves it."""
    contact = {"phone": "+14155550100", "webhook_url": "http://127.0.0.1:9/h"}
    assert (await api.put("/v1/users/u3/contact", json=contact)).status_code == 200
    await herald.store.users.reject_contact("u3", "phone_rejected", "twilio error 21211")
    await herald.store.users.reject_contact("u3", "webhook_disabled", "410 Gone")
    marked = (await api.get("/v1/users/u3/contact")).json()
    assert marked == {**contact, "phone_rejected": "twilio error 21211", "webhook_disabled": "410 Gone"}
    # Saving the document back as read clears the marks: they are Herald's, not the person's.
    assert (await api.put("/v1/users/u3/contact", json=marked)).json() == contact
    assert (await api.get("/v1/users/u3/contact")).json() == contact


async def test_a_bug_is_a_500_in_the_error_shape_and_leaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A route that raises: the caller gets a 500 in the one error shape, and neither the body nor the log
    holds what the exception carried. It used to be Starlette's plain-text "Internal Server Error" (not the
    shape the README promises), with the exception's message and traceback in the server's log."""
    secret = "ada@example.com sk_live_do_not_log"
    app = create_app(make_settings(tmp_path))

    async def broken() -> None:
        raise ValueError(f"a bug that holds {secret}")

    app.add_api_route("/v1/broken", broken, methods=["GET"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.DEBUG):
        async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as api:
            response = await api.get("/v1/broken")
            assert (await api.get("/openapi.json")).status_code == 200, "the app keeps serving"
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["field"] is None and error["message"]
    assert secret not in response.text
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert secret not in logged
    # Its type and its place, as the raise in `broken` above: file, line and function, and nothing more.
    raised_at = broken.__code__.co_firstlineno + 1
    errors = [r.getMessage() for r in caplog.records if r.name == "herald.api" and r.levelno == logging.ERROR]
    assert errors == [f"unhandled ValueError at {Path(__file__).name}:{raised_at} in broken"]
