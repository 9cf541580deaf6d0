"""`/v1/rules`: put, get, list, delete; a rule that cannot work is refused with the field named and never saved."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from tests.conftest import make_settings


@pytest.fixture
async def api(store: Store, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        yield client


def rule(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "high-errors",
        "agent_id": "support-agent",
        "condition": "error_rate > 0.1",
        "user_ids": ["ada"],
        "title": "Error rate {{ error_rate }} on {{ agent_id }}",
        "cooldown_seconds": 600,
    }
    values.update(fields)
    return values


async def test_put_get_list_delete(api: httpx.AsyncClient, store: Store) -> None:
    response = await api.put("/v1/rules/high-errors", json=rule())
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["name"] == "high-errors" and saved["channels"] == ["push", "email"] and saved["enabled"] is True
    assert (await api.get("/v1/rules/high-errors")).json() == saved
    stored = await store.rules.get_rule("high-errors")
    assert stored is not None and stored.cooldown_seconds == 600

    # The name may be left out of the body: the path gives it.
    without_name = {k: v for k, v in rule(condition="latency_ms >= 500").items() if k != "name"}
    response = await api.put("/v1/rules/slow", json=without_name)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "slow"

    # PUT again replaces.
    assert (await api.put("/v1/rules/high-errors", json=rule(enabled=False))).json()["enabled"] is False
    listed = (await api.get("/v1/rules")).json()
    assert [r["name"] for r in listed["rules"]] == ["high-errors", "slow"]
    assert listed["rules"][0]["enabled"] is False

    deleted = await api.delete("/v1/rules/high-errors")
    assert deleted.status_code == 204 and deleted.content == b""
    missing = await api.get("/v1/rules/high-errors")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "no rule high-errors", "field": "name"}
    assert (await api.delete("/v1/rules/high-errors")).status_code == 404
    assert [r.name for r in await store.rules.list_rules()] == ["slow"]


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"condition": "error_rate >"}, "condition", "invalid_rule"),  # CEL syntax error
        ({"condition": "error_rate > > 1"}, "condition", "invalid_rule"),
        ({"title": "Errors {{ error_rate "}, "title", "invalid_rule"),  # template that does not parse
        ({"body": "{% for x in %}"}, "body", "invalid_rule"),
        ({"channels": ["fax"]}, "channels.0", "invalid_request"),
        ({"cooldown_seconds": -1}, "cooldown_seconds", "invalid_request"),
        ({"name": "other-name"}, "name", "invalid_rule"),  # the body's name disagrees with the path
        ({"user_ids": []}, "user_ids", "invalid_request"),
        ({"agent_id": "not an id"}, "agent_id", "invalid_request"),
        ({"colour": "red"}, "colour", "invalid_request"),
    ],
)
async def test_a_bad_rule_names_the_field_and_saves_nothing(
    api: httpx.AsyncClient, store: Store, fields: dict[str, Any], field: str, code: str
) -> None:
    response = await api.put("/v1/rules/high-errors", json=rule(**fields))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]
    assert await store.rules.get_rule("high-errors") is None
    assert await store.rules.rules_version() == 0, "nothing was written"
    assert (await api.get("/v1/rules")).json() == {"rules": []}


async def test_a_cel_error_says_where(api: httpx.AsyncClient) -> None:
    error = (await api.put("/v1/rules/high-errors", json=rule(condition="error_rate > 0.1 &&"))).json()["error"]
    assert error["field"] == "condition"
    assert re.search(r"column \d+", error["message"]), f"no position in {error['message']!r}"


async def test_a_bad_rule_does_not_replace_a_good_one(api: httpx.AsyncClient) -> None:
    good = (await api.put("/v1/rules/high-errors", json=rule())).json()
    assert (await api.put("/v1/rules/high-errors", json=rule(condition="error_rate >"))).status_code == 422
    assert (await api.get("/v1/rules/high-errors")).json() == good


async def test_bad_names_in_the_path(api: httpx.AsyncClient) -> None:
    response = await api.put("/v1/rules/bad%20name", json=rule(name="bad name"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "name"
    assert (await api.get("/v1/rules/bad%20name")).status_code == 422
