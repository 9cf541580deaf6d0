"""`/v1/heartbeats` through the real API, worker and dev server: set, ping, list, delete; who may do each; bad
input named by field; /metrics counts pings, changes and the misses the worker reports.

Heartbeats are `heartbeat/<agent_id>/<name>` on the shared dev server, so each test uses agents of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from herald.adapters.metrics import REGISTRY
from herald.api.app import create_app
from herald.services.auth import issue_token
from tests.conftest import Harness
from tests.faults.procs import eventually

ADMIN_KEY = "admin-key-for-heartbeat-tests"


@dataclass
class Api:
    http: httpx.AsyncClient
    tokens: dict[str, str]
    agent: str
    other: str

    async def call(self, method: str, url: str, who: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        return await self.http.request(method, url, json=body, headers=headers)


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[Api]:
    settings = herald.settings.changed(auth=True, admin_key=SecretStr(ADMIN_KEY))
    app = create_app(settings, store=herald.store, client=herald.client)
    agent, other = f"backup-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    tokens = {
        "admin": ADMIN_KEY,
        "agent": await issue_token(herald.store, "agent", agent),
        "other": await issue_token(herald.store, "agent", other),
        "user": await issue_token(herald.store, "user", "ada"),
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield Api(http, tokens, agent, other)


def body(agent: str, **fields: Any) -> dict[str, Any]:
    return {"agent_id": agent, "every_seconds": 3600, "grace_seconds": 60, "notify": {"user_id": "ada"}} | fields


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def listed(api: Api, who: str, query: str = "") -> list[dict[str, Any]]:
    response = await api.call("GET", f"/v1/heartbeats{query}", who)
    assert response.status_code == 200, response.text
    return list(response.json()["heartbeats"])


async def test_set_ping_list_and_delete_through_the_api(api: Api) -> None:
    pings, sets = metric("herald_heartbeat_pings_total"), metric("herald_heartbeat_changes_total", action="set")
    put = await api.call("PUT", "/v1/heartbeats/nightly-backup", "agent", body(api.agent))
    assert put.status_code == 200, put.text
    assert put.json() == {
        "name": "nightly-backup",
        "agent_id": api.agent,
        "every_seconds": 3600,
        "grace_seconds": 60,
        "notify": {"user_id": "ada", "priority": "high", "channels": None},
    }
    await eventually(lambda: listed(api, "agent"), "the heartbeat listed", 30)
    [before] = await listed(api, "agent")
    ping = await api.call("POST", "/v1/heartbeats/nightly-backup/ping", "agent")
    assert ping.status_code == 202, ping.text
    assert ping.json()["name"] == "nightly-backup" and ping.json()["agent_id"] == api.agent

    async def pinged() -> bool:
        [now] = await listed(api, "agent")
        return bool(now["last_ping_at"] > before["last_ping_at"])

    await eventually(pinged, "the ping in the heartbeat's status", 30)
    [after] = await listed(api, "agent")
    assert after["state"] == "up" and after["missed_at"] is None
    assert after["deadline"] > after["last_ping_at"]
    # The admin lists every agent's (or one agent's); the agent key its own.
    assert [h["name"] for h in await listed(api, "admin", f"?agent_id={api.agent}")] == ["nightly-backup"]
    assert api.agent in {h["agent_id"] for h in await listed(api, "admin")}
    assert await listed(api, "other") == []
    assert metric("herald_heartbeat_pings_total") == pings + 1
    assert metric("herald_heartbeat_changes_total", action="set") == sets + 1
    exposed = (await api.call("GET", "/metrics", "admin")).text
    assert f"herald_heartbeat_pings_total {pings + 1}" in exposed

    deleted = await api.call("DELETE", "/v1/heartbeats/nightly-backup", "agent")
    assert deleted.status_code == 204, deleted.text
    await eventually(lambda: _empty(api), "the heartbeat gone from the list", 30)
    again = await api.call("POST", "/v1/heartbeats/nightly-backup/ping", "agent")
    assert again.status_code == 404 and again.json()["error"]["field"] == "name"


async def _empty(api: Api) -> bool:
    return await listed(api, "agent") == []


async def test_a_miss_is_counted_in_the_worker_metrics(api: Api, herald: Harness) -> None:
    missed = metric("herald_heartbeat_events_total", event="missed")
    fast = body(api.agent, every_seconds=1, grace_seconds=0, notify={"user_id": "nobody", "channels": ["email"]})
    assert (await api.call("PUT", "/v1/heartbeats/fast", "admin", fast)).status_code == 200

    async def is_missed() -> bool:
        found = await listed(api, "admin", f"?agent_id={api.agent}")
        return bool(found) and found[0]["state"] == "missed"

    await eventually(is_missed, "the heartbeat missed", 30)
    await eventually(
        lambda: metric("herald_heartbeat_events_total", event="missed") == missed + 1, "the miss counted", 30
    )
    assert (await api.call("DELETE", f"/v1/heartbeats/fast?agent_id={api.agent}", "admin")).status_code == 204


async def test_who_may_set_ping_list_and_delete(api: Api) -> None:
    url = "/v1/heartbeats/nightly-backup"
    # Another agent's key, a user token, no token: refused before anything is started.
    for who, status in (("other", 403), ("user", 403), ("nobody", 401)):
        response = await api.call("PUT", url, who, body(api.agent))
        assert response.status_code == status, (who, response.text)
    assert (await api.call("PUT", url, "admin", body(api.agent))).status_code == 200
    for who, query, status in (
        ("other", f"?agent_id={api.agent}", 403),  # an agent key acts for its own agent only
        ("other", "", 404),  # its own agent has no such heartbeat
        ("user", f"?agent_id={api.agent}", 403),
        ("nobody", "", 401),
    ):
        response = await api.call("POST", f"{url}/ping{query}", who)
        assert response.status_code == status, (who, query, response.text)
        response = await api.call("DELETE", f"{url}{query}", who)
        assert response.status_code == status, (who, query, response.text)
    for who, status in (("other", 403), ("user", 403)):
        response = await api.call("GET", f"/v1/heartbeats?agent_id={api.agent}", who)
        assert response.status_code == status, (who, response.text)
    assert (await api.call("GET", "/v1/heartbeats", "user")).status_code == 403
    # The admin names the agent; without one there is nothing to ping.
    response = await api.call("POST", f"{url}/ping", "admin")
    assert response.status_code == 422 and response.json()["error"]["field"] == "agent_id"
    assert (await api.call("POST", f"{url}/ping?agent_id={api.agent}", "admin")).status_code == 202
    assert (await api.call("DELETE", f"{url}?agent_id={api.agent}", "admin")).status_code == 204
    # A misspelt filter is refused, never taken as no filter (which lists every agent's).
    response = await api.call("GET", f"/v1/heartbeats?agentid={api.agent}", "admin")
    assert response.status_code == 422 and response.json()["error"]["field"] == "agentid"


@pytest.mark.parametrize(
    ("name", "fields", "field"),
    [
        ("nightly-backup", {"every_seconds": 0}, "every_seconds"),
        ("nightly-backup", {"every_seconds": 10**9}, "every_seconds"),
        ("nightly-backup", {"grace_seconds": -5}, "grace_seconds"),
        ("nightly-backup", {"notify": {"priority": "high"}}, "notify.user_id"),
        ("nightly-backup", {"notify": {"user_id": "ada", "channels": ["pager"]}}, "notify.channels.0"),
        ("nightly-backup", {"name": "other"}, "name"),
        ("Not_A_Slug!", {}, "name"),
    ],
)
async def test_a_bad_heartbeat_is_a_422_naming_the_field(
    api: Api, name: str, fields: dict[str, Any], field: str
) -> None:
    response = await api.call("PUT", f"/v1/heartbeats/{name}", "admin", body(api.agent, **fields))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    assert await listed(api, "admin", f"?agent_id={api.agent}") == []
