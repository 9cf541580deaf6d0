"""Bearer auth on every route: no token is a 401, someone else's token a 403, the admin key opens everything.

Tokens are real ones, issued into the store as `herald keys issue` / `herald tokens issue` do.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.api.auth import ADMIN, ANYONE, Caller, access_problem, who_may
from herald.services.auth import issue_token
from tests.conftest import Harness, make_settings

ADMIN_KEY = "admin-" + "k" * 40
SUBSCRIPTION = {"endpoint": "https://push.example.test/sub/1", "keys": {"p256dh": "x" * 87, "auth": "y" * 22}}
RULE = {"name": "high-errors", "condition": "error_rate > 0.1", "user_ids": ["ada"]}


def closed_port() -> int:
    """A loopback port nothing listens on: a Temporal address the app cannot reach."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Secured:
    api: httpx.AsyncClient
    tokens: dict[str, str]  # who -> token: ada, bob (users), support-agent, other-agent (agents), admin
    seen: list[httpx.Response]

    async def call(self, method: str, path: str, who: str | None, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        response = await self.api.request(method, path, json=body, headers=headers)
        self.seen.append(response)
        return response


async def issue_all(store: Store) -> dict[str, str]:
    return {
        "ada": await issue_token(store, "user", "ada"),
        "bob": await issue_token(store, "user", "bob"),
        "support-agent": await issue_token(store, "agent", "support-agent"),
        "other-agent": await issue_token(store, "agent", "other-agent"),
        "admin": ADMIN_KEY,
    }


def assert_no_secrets(responses: list[httpx.Response], tokens: dict[str, str]) -> None:
    for response in responses:
        text = response.text + repr(dict(response.headers))
        for token in tokens.values():
            assert token not in text, f"a token leaked in {response.request.method} {response.request.url}"


@pytest.fixture
async def secured(store: Store, tmp_path: Path) -> AsyncIterator[Secured]:
    """`herald api` settings (auth on, an admin key); Temporal unreachable, so nothing here may need it."""
    settings = make_settings(tmp_path, auth=True, admin_key=ADMIN_KEY, temporal_address=f"127.0.0.1:{closed_port()}")
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        secured = Secured(api, await issue_all(store), [])
        yield secured
        assert_no_secrets(secured.seen, secured.tokens)


# (method, path, body, who may, who may not): every protected route that needs no Temporal to answer.
USER_ROUTES = [
    ("PUT", "/v1/users/ada/preferences", {"default": {"email": True}}),
    ("GET", "/v1/users/ada/preferences", None),
    ("PUT", "/v1/users/ada/contact", {"email": "ada@example.com"}),
    ("GET", "/v1/users/ada/contact", None),
    ("POST", "/v1/users/ada/push-subscriptions", SUBSCRIPTION),
    ("DELETE", "/v1/users/ada/push-subscriptions", {"endpoint": SUBSCRIPTION["endpoint"]}),
]
RULE_ROUTES = [
    ("PUT", "/v1/rules/high-errors", RULE),
    ("GET", "/v1/rules/high-errors", None),
    ("GET", "/v1/rules", None),
    ("DELETE", "/v1/rules/high-errors", None),
]
ROUTES = (
    [(m, p, b, {"ada", "admin"}, "a user token for ada or the admin key") for m, p, b in USER_ROUTES]
    + [(m, p, b, {"admin"}, "the admin key") for m, p, b in RULE_ROUTES]
    + [
        (
            "POST",
            "/v1/events",
            {"agent_id": "support-agent", "metrics": {"error_rate": 0.0}},
            {"support-agent", "admin"},
            "an agent key for support-agent or the admin key",
        )
    ]
)


@pytest.mark.parametrize(("method", "path", "body", "allowed", "who_may_text"), ROUTES)
async def test_each_protected_route_refuses_strangers_and_admits_its_principal(
    secured: Secured, method: str, path: str, body: Any, allowed: set[str], who_may_text: str
) -> None:
    response = await secured.call(method, path, None, body)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"

    for who in sorted(set(secured.tokens) - allowed):
        response = await secured.call(method, path, who, body)
        assert response.status_code == 403, (who, response.text)
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert error["message"] == f"this needs {who_may_text}"

    for who in sorted(allowed):
        response = await secured.call(method, path, who, body)
        assert response.status_code not in (401, 403), (who, response.text)
        assert response.status_code < 500, (who, response.text)


async def test_unknown_tokens_and_other_schemes_are_401(secured: Secured) -> None:
    for header in [
        "Bearer hrt_" + "a" * 43,  # looks like a user token, never issued
        "Bearer hrk_" + "b" * 43,
        "Bearer " + ADMIN_KEY + "x",  # close to the admin key is not the admin key
        "Bearer " + "z" * 500,
        f"Basic {ADMIN_KEY}",  # the right secret under the wrong scheme
        "Bearer",
    ]:
        response = await secured.api.get("/v1/rules", headers={"Authorization": header})
        secured.seen.append(response)
        assert response.status_code == 401, (header, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        secret = header.partition(" ")[2]
        if secret:
            assert secret not in response.text


async def test_agent_key_cannot_send_as_another_agent(secured: Secured) -> None:
    notification = {"agent_id": "support-agent", "user_id": "ada", "title": "Deploy finished"}
    response = await secured.call("POST", "/v1/notifications", "other-agent", notification)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "this needs an agent key for support-agent or the admin key",
        "field": "agent_id",
    }
    for who in ("ada", "bob"):
        assert (await secured.call("POST", "/v1/notifications", who, notification)).status_code == 403
    assert (await secured.call("POST", "/v1/notifications", None, notification)).status_code == 401
    # A stranger learns nothing from a malformed body either: authentication comes before validation.
    assert (await secured.call("POST", "/v1/notifications", None, {"title": 3})).status_code == 401


async def test_open_routes_need_no_token(secured: Secured) -> None:
    for path in ["/docs", "/openapi.json"]:
        response = await secured.call("GET", path, None)
        assert response.status_code == 200, path
    # Open, but not configured here: they answer for themselves, never with 401.
    assert (await secured.call("GET", "/v1/vapid-public-key", None)).json()["error"]["code"] == "vapid_not_configured"
    twilio = await secured.call("POST", "/v1/providers/twilio/status", None)
    assert twilio.json()["error"]["code"] == "twilio_not_configured"
    health = await secured.call("GET", "/healthz", None)
    assert health.status_code == 503 and health.json()["temporal"].startswith("down")


async def test_openapi_shows_the_bearer_scheme_on_protected_routes_only(secured: Secured) -> None:
    spec = (await secured.call("GET", "/openapi.json", None)).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    paths = spec["paths"]
    assert paths["/v1/rules"]["get"]["security"] == [{"HTTPBearer": []}]
    assert paths["/v1/events"]["post"]["security"] == [{"HTTPBearer": []}]
    assert paths["/v1/users/{user_id}/push-subscriptions"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in paths["/v1/vapid-public-key"]["get"]
    assert "security" not in paths["/healthz"]["get"]


async def test_without_an_admin_key_rules_are_closed_to_every_token(store: Store, tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, auth=True), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        user = await issue_token(store, "user", "ada")
        response = await api.get("/v1/rules", headers={"Authorization": f"Bearer {user}"})
        assert response.status_code == 403
        response = await api.get("/v1/rules", headers={"Authorization": "Bearer "})
        assert response.status_code == 401


async def test_auth_off_lets_everything_through(store: Store, tmp_path: Path) -> None:
    """`herald dev` without --auth: no token needed, and a bad one is not even looked at."""
    app = create_app(make_settings(tmp_path, auth=False), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        assert (await api.get("/v1/rules")).status_code == 200
        assert (await api.get("/v1/users/ada/preferences")).status_code == 200
        response = await api.get("/v1/users/ada/preferences", headers={"Authorization": "Bearer nonsense"})
        assert response.status_code == 200


async def test_notifications_are_read_by_their_user_their_agent_or_the_admin(herald: Harness) -> None:
    settings = herald.settings.changed(auth=True, admin_key=SecretStr(ADMIN_KEY))
    app = create_app(settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        secured = Secured(api, await issue_all(herald.store), [])
        assert (await secured.call("PUT", "/v1/users/ada/contact", "admin", {"email": "ada@example.com"})).is_success
        notification = {
            "agent_id": "support-agent",
            "user_id": "ada",
            "title": "Deploy finished",
            "channels": ["email"],
        }
        sent = await secured.call("POST", "/v1/notifications", "support-agent", notification)
        assert sent.status_code == 202, sent.text
        status_url = sent.json()["status_url"]
        for who in ("ada", "support-agent", "admin"):
            response = await secured.call("GET", status_url, who)
            assert response.status_code == 200, (who, response.text)
            assert response.json()["user_id"] == "ada"
        # Anyone else is told it doesn't exist, exactly as for an unknown id (tests/hostile/test_access.py).
        nid = sent.json()["notification_id"]
        for who in ("bob", "other-agent"):
            response = await secured.call("GET", status_url, who)
            assert response.status_code == 404, who
            assert response.json()["error"] == {
                "code": "not_found",
                "message": f"no notification {nid}",
                "field": "notification_id",
            }
        assert (await secured.call("GET", status_url, None)).status_code == 401
        assert (await secured.call("GET", "/v1/notifications/never-sent", "bob")).status_code == 404
        admin_sent = await secured.call("POST", "/v1/notifications", "admin", {**notification, "title": "By admin"})
        assert admin_sent.status_code == 202
        assert_no_secrets(secured.seen, secured.tokens)


def test_access_decisions() -> None:
    """The pure decision behind every route."""
    ada, agent = Caller("user", "ada"), Caller("agent", "support-agent")
    assert access_problem(ANYONE) is None and access_problem(ADMIN) is None
    assert access_problem(ada, users=["ada"]) is None
    assert access_problem(agent, agents=["support-agent"]) is None
    assert access_problem(agent, users=["support-agent"]) is not None, "an agent key is not a user token"
    assert access_problem(ada, agents=["ada"]) is not None, "a user token is not an agent key"
    missing = access_problem(None, users=["ada"])
    assert missing is not None and missing.status == 401 and missing.headers == {"WWW-Authenticate": "Bearer"}
    refused = access_problem(ada, users=["bob"], field="user_id")
    assert refused is not None and (refused.status, refused.code, refused.field) == (403, "forbidden", "user_id")
    assert refused.headers == {}
    assert who_may() == "the admin key"
    assert who_may(agents=["a"]) == "an agent key for a or the admin key"
    assert who_may(["u"], ["a"]) == "a user token for u, an agent key for a or the admin key"


async def test_herald_api_always_enforces_auth(tmp_path: Path) -> None:
    """`herald api` as a process: HERALD_AUTH=false in its environment does not open it."""
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEMPORAL_"))}
    env.update(HERALD_HOME=str(tmp_path), HERALD_AUTH="false", HERALD_ADMIN_KEY=ADMIN_KEY)
    herald = str(Path(sys.executable).parent / "herald")
    process = await asyncio.create_subprocess_exec(
        herald, "api", "--port", str(port), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as api:
            for _ in range(300):  # until it listens (or exits)
                if process.returncode is not None:
                    break
                try:
                    await api.get("/openapi.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            assert process.returncode is None, "herald api exited"
            refused = await api.get("/v1/rules")
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            admitted = await api.get("/v1/rules", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            assert admitted.status_code == 200 and admitted.json() == {"rules": []}
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert process.stderr is not None
    assert ADMIN_KEY not in (await process.stderr.read()).decode()
