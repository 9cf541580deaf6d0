"""Access, end to end: refused calls leave no trace but a log line; a user's push reaches only that user's
sockets and only that user's acks count; secrets (tokens, keys, the webhook secret, provider credentials,
codec keys) appear in no log line, no error body and no byte of a workflow's history.

Route-by-route 401/403 decisions are in tests/api/test_auth.py and tests/api/test_audit_api.py; here the
whole stack runs as `herald api` and `herald worker` processes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import History
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect

from herald.adapters.codec import codec_from_keys
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.models import (
    REFUSED_ANSWERS_MAX,
    Action,
    AgentNotification,
    ChannelName,
    Contact,
    NotificationStatus,
    utcnow,
)
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.channels.test_websocket import serve
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, make_settings
from tests.fakes.http import FakeHTTPServer, start_fake
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.twilio import FakeTwilio
from tests.hostile.conftest import ADMIN_KEY, CODEC_KEY, LiveStack, live_stack
from tests.workflows.test_encrypted_history import clear_text
from worker import create_worker, open_runtime

ACCOUNT_SID = "AC" + "5ec7" * 8
TWILIO_TOKEN = "twilio-" + "t" * 32
SENDGRID_KEY = "SG." + "s" * 40


def snapshot(stack: LiveStack) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in the stack's SQLite store, read-only."""
    with sqlite3.connect(f"file:{stack.home / 'herald.db'}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: sorted(db.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr) for table in tables}


async def test_refused_calls_write_nothing_start_nothing_and_log_one_line_each(idle_stack: LiveStack) -> None:
    stack = idle_stack
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as api:
        admin = stack.headers("admin")
        rule = {"agent_id": "support-agent", "condition": "x > 0", "user_ids": ["ada"], "cooldown_seconds": 0}
        assert (await api.put("/v1/rules/any-x", json=rule, headers=admin)).status_code == 200
        assert (await api.put("/v1/users/ada/contact", json={"email": "ada@example.com"}, headers=admin)).is_success
        before, log_before = snapshot(stack), len(stack.log_lines())

        wrong = {"Authorization": "Bearer hrt_" + "x" * 43}
        note = {"agent_id": "support-agent", "user_id": "ada", "title": "Deploy finished", "channels": ["email"]}
        event = {"agent_id": "support-agent", "metrics": {"x": 1}}
        subscription = {"endpoint": "https://push.example.test/s", "keys": {"p256dh": "p" * 87, "auth": "a" * 22}}
        refused = [
            ("POST", "/v1/notifications", note, {}, 401),
            ("POST", "/v1/notifications", note, wrong, 401),
            ("POST", "/v1/notifications", note, stack.headers("other-agent"), 403),
            ("POST", "/v1/notifications", note, stack.headers("ada"), 403),
            ("POST", "/v1/events", event, {}, 401),
            ("POST", "/v1/events", event, stack.headers("other-agent"), 403),  # the rule would fire
            ("POST", "/v1/events", event, stack.headers("ada"), 403),
            ("PUT", "/v1/users/ada/preferences", {"default": {"email": False}}, stack.headers("bob"), 403),
            ("PUT", "/v1/users/ada/preferences", {"default": {"email": False}}, stack.headers("support-agent"), 403),
            ("PUT", "/v1/users/ada/contact", {"email": "evil@example.com"}, stack.headers("bob"), 403),
            ("PUT", "/v1/users/ada/contact", {"email": "evil@example.com"}, wrong, 401),
            ("POST", "/v1/users/ada/push-subscriptions", subscription, stack.headers("bob"), 403),
            ("PUT", "/v1/rules/any-x", {**rule, "user_ids": ["bob"]}, stack.headers("ada"), 403),
            ("DELETE", "/v1/rules/any-x", None, stack.headers("support-agent"), 403),
            ("GET", "/v1/users/ada/contact", None, stack.headers("bob"), 403),
            ("GET", "/v1/users/ada/preferences", None, stack.headers("support-agent"), 403),
            ("GET", "/v1/notifications?user_id=ada", None, stack.headers("bob"), 403),
            ("GET", "/v1/notifications?agent_id=support-agent", None, stack.headers("other-agent"), 403),
            ("POST", "/codec/decode", {"payloads": []}, stack.headers("ada"), 403),
        ]
        for method, path, body, headers, status in refused:
            response = await api.request(method, path, json=body, headers=headers)
            assert response.status_code == status, (method, path, response.text)
            assert response.json()["error"]["code"] == ("unauthorized" if status == 401 else "forbidden")

        assert snapshot(stack) == before, "a refused call wrote to the store"
        started = [e.id async for e in stack.temporal.list_workflows(f'TaskQueue="{stack.task_queue}"')]
        assert started == [], "a refused call started a workflow"
        # The same event from the right agent does fire: the rule and the query above were live all along.
        fired = await api.post("/v1/events", json=event, headers=stack.headers("support-agent"))
        assert fired.status_code == 202 and fired.json()["fired"], fired.text

    new_lines = stack.log_lines()[log_before:]
    refused_lines = [line for line in new_lines if line.get("status") in (401, 403)]
    assert len(refused_lines) == len(refused)
    assert all(line["logger"] == "herald.api" and line["level"] == "INFO" for line in refused_lines)
    assert [line["status"] for line in refused_lines] == [status for *_, status in refused]
    # Nothing else was logged for them: the only other lines are the allowed event's.
    others = [line for line in new_lines if line not in refused_lines]
    assert all(line.get("status") not in (401, 403) for line in others)
    assert not any(line["level"] in ("WARNING", "ERROR") for line in new_lines), new_lines


async def recv(ws: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return value


async def test_a_users_push_reaches_only_their_sockets_and_only_their_ack_counts(
    herald_push: tuple[HeraldClient, Store, int],
) -> None:
    client, store, port = herald_push
    ada, bob = f"ada-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    ada_token, bob_token = await issue_token(store, "user", ada), await issue_token(store, "user", bob)
    url = f"ws://127.0.0.1:{port}/v1/ws"
    # Ada's token opens Ada's socket, whatever else the URL names.
    async with (
        connect(f"{url}?token={ada_token}&user_id={bob}") as ada_ws,
        connect(f"{url}?token={bob_token}") as bob_ws,
    ):
        assert (await recv(ada_ws))["user_id"] == ada
        assert (await recv(bob_ws))["user_id"] == bob

        to_bob = AgentNotification(agent_id="monitor", user_id=bob, title="For Bob only", channels=[ChannelName.push])
        bob_handle = await client.notify(to_bob)
        frame = await recv(bob_ws)
        assert frame["notification_id"] == to_bob.notification_id
        # Ada acks Bob's notification (she knows its id): it does not count, Bob never acked.
        await ada_ws.send(json.dumps({"type": "ack", "notification_id": to_bob.notification_id}))
        outcome = await bob_handle.outcome()
        assert outcome.channels[ChannelName.push].status != "delivered"
        assert outcome.channels[ChannelName.push].error_type == "PushNotAcked"

        to_ada = AgentNotification(agent_id="monitor", user_id=ada, title="For Ada", channels=[ChannelName.push])
        ada_handle = await client.notify(to_ada)
        # Frames arrive in order: Ada's first frame is her own, so Bob's never reached her socket.
        frame = await recv(ada_ws)
        assert (frame["notification_id"], frame["user_id"]) == (to_ada.notification_id, ada)
        await ada_ws.send(json.dumps({"type": "ack", "notification_id": to_ada.notification_id}))
        assert (await ada_handle.outcome()).status is NotificationStatus.delivered


@pytest.fixture
async def provider_stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory, fake_http: FakeHTTPServer
) -> AsyncIterator[tuple[LiveStack, FakeSendGrid, FakeTwilio]]:
    """The live stack with SendGrid, Twilio and signed webhooks configured, each provider a loopback fake."""
    sendgrid, twilio = FakeSendGrid(), FakeTwilio(ACCOUNT_SID, TWILIO_TOKEN)
    servers = [await start_fake(sendgrid), await start_fake(twilio)]
    sendgrid.port, twilio.port = servers[0][2], servers[1][2]
    extra = {
        "SENDGRID_API_KEY": SENDGRID_KEY,
        "HERALD_EMAIL_FROM": "herald@example.com",  # SendGrid refuses the default herald@localhost
        "SENDGRID_API_HOST": sendgrid.host,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TWILIO_FROM": "+14155550199",
        "TWILIO_API_BASE": twilio.base_url,
        "HERALD_ALLOW_PRIVATE_WEBHOOKS": "1",  # the receiver is the loopback fake
    }
    try:
        async with live_stack(temporal_env, tmp_path_factory.mktemp("secrets"), extra) as stack:
            yield stack, sendgrid, twilio
    finally:
        for server, task, _port in servers:
            server.should_exit = True
            await task


def secret_forms(stack: LiveStack) -> list[bytes]:
    """Each secret as text, and the forms it could hide in: base64 of it, the raw codec key, Basic auth."""
    secrets = [s.encode() for s in stack.secrets()]
    secrets += [WEBHOOK_SECRET.removeprefix("whsec_").encode(), base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))]
    secrets += [CODEC_KEY.key, base64.b64encode(CODEC_KEY.key)]
    secrets += [base64.b64encode(f"{ACCOUNT_SID}:{TWILIO_TOKEN}".encode())]
    forms = list(secrets)
    forms += [base64.b64encode(s) for s in secrets]
    return forms


async def test_secrets_never_reach_logs_errors_or_history(
    provider_stack: tuple[LiveStack, FakeSendGrid, FakeTwilio], fake_http: FakeHTTPServer
) -> None:
    stack, sendgrid, twilio = provider_stack
    hook = fake_http.script(f"/secrets/{uuid.uuid4().hex[:8]}", 503, 200)
    twilio.fail_next(21211)  # Twilio refuses the number: a failure lands in the history too
    bodies: list[str] = []
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as api:
        contact = {"email": "ada@example.com", "phone": "+14155550100", "webhook_url": hook}
        assert (await api.put("/v1/users/ada/contact", json=contact, headers=stack.headers("ada"))).is_success
        note = {
            "agent_id": "support-agent",
            "user_id": "ada",
            "title": "Card ending 4242 refunded",
            "priority": "high",
            "channels": ["email", "sms", "webhook"],
        }
        sent = await api.post("/v1/notifications", json=note, headers=stack.headers("support-agent"))
        assert sent.status_code == 202, sent.text
        nid = sent.json()["notification_id"]
        view: dict[str, Any] = {}
        for _ in range(400):
            view = (await api.get(f"/v1/notifications/{nid}", headers=stack.headers("ada"))).json()
            if view["status"] != "pending":
                break
            await asyncio.sleep(0.05)
        assert view["channels"]["email"]["status"] == "delivered", view
        assert view["channels"]["webhook"]["status"] == "delivered", view
        assert view["channels"]["sms"]["error_type"], view
        bodies.append(json.dumps(view))
        # Errors of every kind, with the secrets close at hand.
        for method, path, body, headers in [
            ("GET", "/v1/rules", None, {"Authorization": f"Bearer {stack.tokens['admin']}x"}),
            ("GET", "/v1/rules", None, {"Authorization": f"Basic {stack.tokens['admin']}"}),
            ("GET", f"/v1/notifications/{nid}", None, stack.headers("bob")),
            ("POST", "/v1/notifications", {**note, "title": ""}, stack.headers("support-agent")),
            ("POST", "/codec/decode", {"payloads": "not a list"}, stack.headers("admin")),
            ("PUT", "/v1/users/ada/contact", {"webhook_url": WEBHOOK_SECRET}, stack.headers("ada")),
        ]:
            response = await api.request(method, path, json=body, headers=headers)
            assert response.status_code >= 400
            bodies.append(response.text + json.dumps(dict(response.headers)))

    # The secrets were really in use: the providers saw them.
    assert sendgrid.requests[0].headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert twilio.requests
    assert fake_http.received(hook.removeprefix(fake_http.url("")))[-1].headers["webhook-signature"].startswith("v1,")

    history = await stack.temporal.get_workflow_handle(f"notification/{nid}").fetch_history()
    raw = History(events=history.events).SerializeToString()
    as_json = history.to_json()
    decoded = await decode_payloads(json.loads(as_json))
    assert b"Card ending 4242" in decoded, "the codec opens the history: decoded payloads are searched too"
    logs = stack.log_text().encode()
    for secret in secret_forms(stack):
        assert secret not in raw, "a secret in the raw history"
        assert secret not in clear_text(as_json).encode(), "a secret in the history's text"
        assert secret not in decoded, "a secret in the decoded history"
        assert secret not in logs, "a secret in a log line"
        assert all(secret not in body.encode() for body in bodies), "a secret in a response"


async def decode_payloads(document: Any) -> bytes:
    """Every payload in a history's JSON, decrypted with the stack's codec key, concatenated."""
    codec = codec_from_keys(SecretStr(CODEC_KEY.entry()))
    assert codec is not None
    found: list[Payload] = []
    stack: list[Any] = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if "data" in value and "metadata" in value and isinstance(value["metadata"], dict):
                found.append(json_format.ParseDict(value, Payload(), ignore_unknown_fields=True))
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    encrypted = [p for p in found if p.metadata.get("encoding") == b"binary/encrypted"]
    assert encrypted, "the stack encrypts its payloads"
    return b"\n".join(p.data for p in await codec.decode(encrypted))


@dataclass
class Secured:
    """A worker and the API with auth on (one process, one push hub), and a token per person."""

    client: HeraldClient
    store: Store
    port: int
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
async def secured(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Secured]:
    settings = make_settings(tmp_path / "herald", auth=True, admin_key=ADMIN_KEY)
    queue = f"hostile-{uuid.uuid4().hex[:10]}"
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY, store=runtime.store)
        tokens = {
            who: await issue_token(runtime.store, kind, who)
            for who, kind in [("ada", "user"), ("bob", "user"), ("support-agent", "agent"), ("other-agent", "agent")]
        }
        app = create_app(settings, store=runtime.store, client=client, hub=runtime.hub)
        async with serve(app) as port:
            yield Secured(client, runtime.store, port, tokens)


async def open_question(secured: Secured) -> AgentNotification:
    """A question from support-agent to ada, delivered (to the outbox) and waiting for her answer."""
    await secured.store.users.put_contact("ada", Contact(email="ada@example.com"))
    question = AgentNotification(
        agent_id="support-agent",
        user_id="ada",
        title="Roll back the release?",
        channels=[ChannelName.email],
        actions=[Action(id="approve", label="Approve"), Action(id="deny", label="Deny")],
        respond_by=utcnow() + timedelta(minutes=10),
    )
    handle = await secured.client.notify(question)
    for _ in range(400):
        status = await handle.status()
        if ChannelName.email in status.channels and status.channels[ChannelName.email].status == "delivered":
            return question
        await asyncio.sleep(0.025)
    raise AssertionError("the question was not delivered")


def as_unknown(text: str, notification_id: str) -> str:
    return text.replace(notification_id, "<id>")


async def test_another_users_notification_reads_as_unknown_on_every_route(secured: Secured) -> None:
    """A foreign notification id used to answer 403 `forbidden` ("this needs a user token for ada...") where an
    unknown one answered 404, so any token could tell which ids exist, and whose they are. Now status, respond and
    read marks answer a foreign id exactly as a missing one: same status, same body but for the id."""
    question = await open_question(secured)
    nid, missing = question.notification_id, f"never-sent-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{secured.port}", timeout=30) as api:
        probes = [
            ("GET", "/v1/notifications/{id}", None, "bob"),
            ("GET", "/v1/notifications/{id}", None, "other-agent"),
            ("POST", "/v1/notifications/{id}/respond", {"action_id": "approve"}, "bob"),
            ("POST", "/v1/notifications/{id}/respond", {"action_id": "maybe"}, "bob"),
            ("POST", "/v1/notifications/{id}/respond", {"action_id": "approve"}, "other-agent"),
        ]
        for method, path, body, who in probes:
            answers = []
            for target in (nid, missing):
                sent = json.loads(json.dumps(body).replace("{id}", target)) if body else None
                response = await api.request(
                    method, path.replace("{id}", target), json=sent, headers=secured.headers(who)
                )
                answers.append((response.status_code, as_unknown(response.text, target)))
            foreign, unknown = answers
            assert foreign == unknown, (method, path, who, foreign, unknown)
            assert foreign[0] == 404, (method, path, who, foreign)
            assert "approve" not in foreign[1] and "ada" not in foreign[1], foreign
        # Read marks take any id as the caller's own mark, looked up nowhere: a foreign id and a missing one alike.
        for target in (nid, missing):
            marked = await api.post(
                "/v1/users/bob/notifications/read", json={"notification_ids": [target]}, headers=secured.headers("bob")
            )
            assert marked.status_code == 200 and target in marked.json()["read_ids"], marked.text
        assert (await secured.store.users.get_inbox_state("ada")).read_ids == {}
        # Those who may see it still do; its agent sees it but may not answer for ada.
        assert (await api.get(f"/v1/notifications/{nid}", headers=secured.headers("ada"))).status_code == 200
        assert (await api.get(f"/v1/notifications/{nid}", headers=secured.headers("support-agent"))).status_code == 200
        by_agent = await api.post(
            f"/v1/notifications/{nid}/respond", json={"action_id": "approve"}, headers=secured.headers("support-agent")
        )
        assert (by_agent.status_code, by_agent.json()["error"]["code"]) == (403, "forbidden")
        # None of it answered the question or was kept as a refusal on ada's notification.
        status = await secured.client.get_handle(nid).status()
        assert status.answer is None and status.refused_answers == []
        assert await secured.store.answers.refusals(nid) == []
        answered = await api.post(
            f"/v1/notifications/{nid}/respond", json={"action_id": "deny"}, headers=secured.headers("ada")
        )
        assert answered.status_code == 200, answered.text


async def test_a_socket_answers_only_its_users_questions_and_floods_are_bounded(secured: Secured) -> None:
    """The WebSocket's `respond` used to skip the recipient check the HTTP route makes: the workflow refused
    another user's answer, but the reply named the question's action ids ("this notification offers approve,
    deny, ...") to a socket that sent an unknown action, told a foreign id from an unknown one (`not_recipient`
    versus `not_found`), and every refusal was stored, without bound, on the victim's notification. Now a foreign
    id gets the reply an unknown one gets, nothing is stored, and the user's own bad answers are capped."""
    question = await open_question(secured)
    nid, missing = question.notification_id, f"never-sent-{uuid.uuid4().hex[:8]}"
    url = f"ws://127.0.0.1:{secured.port}/v1/ws"
    async with (
        connect(f"{url}?token={secured.tokens['bob']}") as bob,
        connect(f"{url}?token={secured.tokens['ada']}") as ada,
    ):
        assert (await recv(bob))["type"] == "ready" and (await recv(ada))["type"] == "ready"
        for action in ("approve", "maybe", "ack", "snooze"):
            replies = []
            for target in (nid, missing):
                await bob.send(json.dumps({"type": "respond", "notification_id": target, "action_id": action}))
                reply = await recv(bob)
                replies.append(as_unknown(json.dumps(reply, sort_keys=True), target))
            foreign, unknown = replies
            assert foreign == unknown, (action, foreign, unknown)
            assert '"accepted": false' in foreign and '"code": "not_found"' in foreign
            assert "deny" not in foreign and "ada" not in foreign, foreign
        assert await secured.store.answers.refusals(nid) == []

        # Ada's own socket: bad answers are refused with the reason (she may know the choices), and kept capped.
        for number in range(REFUSED_ANSWERS_MAX + 15):
            await ada.send(json.dumps({"type": "respond", "notification_id": nid, "action_id": f"no-{number}"}))
            reply = await recv(ada)
            assert (reply["accepted"], reply["code"]) == (False, "unknown_action")
        assert "approve, deny" in reply["reason"]
        await ada.send(json.dumps({"type": "respond", "notification_id": nid, "action_id": "approve"}))
        assert (await recv(ada))["accepted"] is True
    kept = await secured.store.answers.refusals(nid)
    assert len(kept) == REFUSED_ANSWERS_MAX
    assert all(len(r.reason) <= 500 for r in kept)
    outcome = await secured.client.get_handle(nid).outcome()
    assert outcome.status is NotificationStatus.answered and outcome.answer is not None
    assert outcome.answer.user_id == "ada"
