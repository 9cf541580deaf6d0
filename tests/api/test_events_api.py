"""`POST /v1/events`: bad events name the field, big ones are refused unread, matches fire once per cooldown.

Monitor workflows are `monitor/<agent_id>` on the whole (shared) dev server, so each Temporal test uses
its own agent id.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.api.events import EVENT_BODY_LIMIT, BodyLimit
from herald.models import ChannelName, Contact, NotificationStatus, TriggerRule
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.conftest import Harness, make_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test")


@pytest.fixture
async def offline(store: Store, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An API whose Temporal address is a closed port: anything that reaches for Temporal gets a 503."""
    app = create_app(
        make_settings(tmp_path, temporal_address=f"127.0.0.1:{closed_port()}"),
        store=store,
        connect=HeraldClient.connect,
    )
    async with api_client(app) as client:
        yield client


def assert_error(response: httpx.Response, status: int, field: str | None, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]
    return str(error["message"])


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ([{"agent_id": "a", "metrics": {}}], None, "dictionary"),  # the body is not an object
        ({"agent_id": "a", "metrics": [1, 2]}, "metrics", "must be an object"),
        ({"agent_id": "a", "metrics": "error_rate=1"}, "metrics", "must be an object"),
        ({"agent_id": "a", "metrics": {"tags": ["x"]}}, "metrics", "metric tags: must be a number"),
        ({"agent_id": "a", "metrics": {"nested": {"x": 1}}}, "metrics", "metric nested: must be a number"),
        ({"agent_id": "a", "metrics": {"missing": None}}, "metrics", "metric missing: must be a number"),
        ({"agent_id": "a", "metrics": {"note": "x" * 300}}, "metrics", "at most 256 characters"),
        ({"agent_id": "a", "metrics": {f"m{i}": i for i in range(201)}}, "metrics", "at most 200"),
        ({"agent_id": "a", "metrics": {"bad-name": 1}}, "metrics", "metric names must be identifiers"),
        ({"agent_id": "not an id", "metrics": {"x": 1}}, "agent_id", "1-128 characters"),
        ({"metrics": {"x": 1}}, "agent_id", "is required"),
        ({"agent_id": "a"}, "metrics", "is required"),
        ({"agent_id": "a", "metrics": {}, "event_id": "no spaces please"}, "event_id", "1-128 characters"),
        ({"agent_id": "a", "metrics": {}, "extra": 1}, "extra", "is not a known field"),
    ],
)
async def test_a_bad_event_names_the_field(offline: httpx.AsyncClient, body: Any, field: str | None, says: str) -> None:
    message = assert_error(await offline.post("/v1/events", json=body), 422, field, "invalid_request")
    assert says in message


async def test_a_body_over_64_kb_is_refused_before_parsing(offline: httpx.AsyncClient) -> None:
    event = json.dumps({"agent_id": "a", "metrics": {"x": 1}}).encode()
    # Whitespace is valid JSON: the same event padded to exactly the limit is accepted, one byte more is not.
    at_limit = event + b" " * (EVENT_BODY_LIMIT - len(event))
    response = await offline.post("/v1/events", content=at_limit, headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    over = at_limit + b" "
    message = assert_error(
        await offline.post("/v1/events", content=over, headers={"content-type": "application/json"}),
        413,
        None,
        "payload_too_large",
    )
    assert "64 KB" in message

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the bytes are counted as they come
        for _ in range(20):
            yield b" " * 4096

    response = await offline.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413, None, "payload_too_large")
    # Other routes keep their own limits (none here).
    big_prefs = {"default": {"email": True}, "agents": {f"agent-{i}": {"push": True} for i in range(3000)}}
    assert len(json.dumps(big_prefs)) > EVENT_BODY_LIMIT
    assert (await offline.put("/v1/users/ada/preferences", json=big_prefs)).status_code == 200


async def test_body_limit_believes_neither_header_nor_silence() -> None:
    """The middleware on its own: a lying Content-Length is caught by counting; small bodies pass intact."""
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def run(headers: list[tuple[bytes, bytes]], parts: list[bytes]) -> int:
        messages: list[Message] = [
            {"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/limited", "headers": headers}
        await BodyLimit(app, {"/limited": 10})(scope, receive, send)
        return int(sent[0]["status"])

    assert await run([(b"content-length", b"4")], [b"12", b"34"]) == 200
    assert seen == [b"1234"]
    assert await run([(b"content-length", b"11")], [b"x"]) == 413, "the header alone is enough to refuse"
    assert await run([(b"content-length", b"3")], [b"123456", b"789012"]) == 413, "a lying header"
    assert await run([], [b"0123456789"]) == 200
    assert await run([], [b"012345", b"67890"]) == 413
    assert len(seen) == 2, "refused bodies never reached the app"


async def test_an_event_matching_nothing_never_touches_temporal(offline: httpx.AsyncClient, store: Store) -> None:
    """Temporal is unreachable here: an event that matches no rule is answered all the same."""
    await store.rules.put_rule(
        TriggerRule(name="high-errors", agent_id="support-agent", condition="error_rate > 0.5", user_ids=["ada"])
    )
    for metrics in [{"error_rate": 0.01}, {"latency_ms": 12}]:
        response = await offline.post(
            "/v1/events", json={"agent_id": "support-agent", "metrics": metrics, "event_id": "evt-1"}
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"event_id": "evt-1", "fired": [], "cooled_down": [], "resolved": []}
    other = await offline.post("/v1/events", json={"agent_id": "other-agent", "metrics": {"error_rate": 0.9}})
    assert other.status_code == 202 and other.json()["fired"] == []
    assert other.json()["event_id"], "an id is made up when the agent sends none"
    # A match does need Temporal, and says so the way POST /v1/notifications does.
    match = await offline.post("/v1/events", json={"agent_id": "support-agent", "metrics": {"error_rate": 0.9}})
    assert_error(match, 503, None, "temporal_unavailable")


async def test_an_agent_key_emits_only_as_its_agent(store: Store, tmp_path: Path) -> None:
    app = create_app(
        make_settings(tmp_path, auth=True, temporal_address=f"127.0.0.1:{closed_port()}"),
        store=store,
        connect=HeraldClient.connect,
    )
    key = await issue_token(store, "agent", "support-agent")
    async with api_client(app) as api:
        headers = {"Authorization": f"Bearer {key}"}
        own = await api.post("/v1/events", json={"agent_id": "support-agent", "metrics": {"x": 1}}, headers=headers)
        assert own.status_code == 202, own.text
        other = await api.post("/v1/events", json={"agent_id": "billing-agent", "metrics": {"x": 1}}, headers=headers)
        message = assert_error(other, 403, "agent_id", "forbidden")
        assert message == "this needs an agent key for billing-agent or the admin key"
        assert key not in other.text


# --- with the monitor workflow on the dev server -------------------------------------------------------


def fresh_agent() -> str:
    return f"agent-{uuid.uuid4().hex[:10]}"


async def put_rule(api: httpx.AsyncClient, agent_id: str, name: str = "high-errors", **fields: Any) -> None:
    values: dict[str, Any] = {
        "agent_id": agent_id,
        "condition": "error_rate > 0.1",
        "user_ids": ["ada"],
        "channels": ["email"],
        "title": "Error rate {{ error_rate }} on {{ agent_id }}",
        "cooldown_seconds": 600,
    }
    values.update(fields)
    response = await api.put(f"/v1/rules/{name}", json=values)
    assert response.status_code == 200, response.text


async def test_a_matching_event_fires_then_cools_down(herald: Harness) -> None:
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    agent = fresh_agent()
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with api_client(app) as api:
        # An event before the rule exists caches the (empty) rules; the PUT must make the next event see it.
        quiet = await api.post("/v1/events", json={"agent_id": agent, "metrics": {"error_rate": 0.5}})
        assert quiet.json()["fired"] == []
        await put_rule(api, agent)

        first = await api.post("/v1/events", json={"agent_id": agent, "metrics": {"error_rate": 0.5}})
        assert first.status_code == 202, first.text
        result = first.json()
        assert [f["rule"] for f in result["fired"]] == ["high-errors"] and result["cooled_down"] == []
        (notification_id,) = result["fired"][0]["notification_ids"]
        outcome = await herald.client.get_handle(notification_id).outcome()
        assert outcome.status is NotificationStatus.delivered
        assert outcome.channels[ChannelName.email].status.value == "delivered"
        sent = json.loads((herald.outbox("email") / f"{notification_id}.json").read_text())
        assert "Error rate 0.5 on " + agent in json.dumps(sent)

        # Within the cooldown the same condition is reported, not sent.
        second = await api.post("/v1/events", json={"agent_id": agent, "metrics": {"error_rate": 0.7}})
        assert second.status_code == 202
        assert second.json()["fired"] == []
        assert [c["rule"] for c in second.json()["cooled_down"]] == ["high-errors"]
        assert second.json()["cooled_down"][0]["until"]

        # Retrying the first event (same event_id) repeats its answer and starts nothing new.
        again = await api.post(
            "/v1/events", json={"agent_id": agent, "metrics": {"error_rate": 0.5}, "event_id": result["event_id"]}
        )
        assert again.json()["fired"] == result["fired"]
    assert len(list(herald.outbox("email").glob("*.json"))) == 1


async def test_two_api_instances_sharing_store_and_temporal_fire_once(herald: Harness) -> None:
    """Concurrent events through two processes' worth of API: one firing per cooldown, retries or not."""
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    agents = {True: fresh_agent(), False: fresh_agent()}  # same event_id, different event_ids
    apps = [create_app(herald.settings, store=herald.store, client=herald.client) for _ in range(2)]
    async with api_client(apps[0]) as one, api_client(apps[1]) as two:
        for agent in agents.values():
            await put_rule(one, agent, name=f"errors-{agent}")  # before either app has read the rules
        for same_event_id, agent in agents.items():
            event_id = {"event_id": f"e-{agent}"} if same_event_id else {}
            event = {"agent_id": agent, "metrics": {"error_rate": 0.9}, **event_id}
            responses = await asyncio.gather(*(api.post("/v1/events", json=event) for api in [one, two, one, two]))
            assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
            results = [r.json() for r in responses]
            fired = {nid for result in results for f in result["fired"] for nid in f["notification_ids"]}
            assert len(fired) == 1, (same_event_id, results)
            if same_event_id:
                assert all(result == results[0] for result in results), "a retry gets the first answer"
            else:
                assert sum(bool(result["fired"]) for result in results) == 1
                assert sum(bool(result["cooled_down"]) for result in results) == 3
            (notification_id,) = fired
            assert (await herald.client.get_handle(notification_id).outcome()).status is NotificationStatus.delivered
    assert len(list(herald.outbox("email").glob("*.json"))) == 2, "one email per agent"
