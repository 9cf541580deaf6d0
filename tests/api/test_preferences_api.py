"""Preferences over HTTP: the issue's example document round-trips; each kind of mistake is a 422 naming the
field, and nothing is saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.models import Preferences
from tests.conftest import make_settings

URL = "/v1/users/ada/preferences"

# "Push for everything from my coding agent, SMS only if critical, nothing between 22:00 and 07:00 Berlin
# time, low priority as an hourly digest."
EXAMPLE: dict[str, Any] = {
    "time_zone": "Europe/Berlin",
    "default": {"push": {"min_priority": "high"}, "email": True, "sms": {"enabled": True, "min_priority": "critical"}},
    "agents": {"coding-agent": {"push": {"enabled": True, "min_priority": "low"}}},
    "quiet_hours": {"window": "22:00-07:00", "during": "hold"},
    "digest": {"cadence": "hourly", "priorities": "low"},
}


@pytest.fixture
async def api(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_the_issue_example_round_trips(api: httpx.AsyncClient, store: Store) -> None:
    response = await api.put(URL, json=EXAMPLE)
    assert response.status_code == 200, response.text
    assert response.json() == EXAMPLE
    assert (await api.get(URL)).json() == EXAMPLE
    assert await store.users.get_preferences("ada") == Preferences.model_validate(EXAMPLE)


async def test_notify_resolved_round_trips_as_false_or_a_priority(api: httpx.AsyncClient) -> None:
    document = {"default": {"notify_resolved": False}, "agents": {"disk-agent": {"notify_resolved": "medium"}}}
    assert (await api.put(URL, json=document)).status_code == 200
    saved = (await api.get(URL)).json()
    assert saved["default"]["notify_resolved"] is False
    assert saved["agents"]["disk-agent"]["notify_resolved"] == "medium"


async def test_unset_fields_stay_unset(api: httpx.AsyncClient) -> None:
    short = {"default": {"sms": False}, "agents": {}, "quiet_hours": {"window": "13:00-14:00"}}
    assert (await api.put(URL, json=short)).status_code == 200
    assert (await api.get(URL)).json() == short


async def test_the_old_shape_still_round_trips(api: httpx.AsyncClient) -> None:
    old = {"default": {"push": True, "email": True, "sms": False}, "agents": {"a": {"email": False}}}
    assert (await api.put(URL, json=old)).json() == old
    assert (await api.get(URL)).json() == old


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with the value at the dotted `path` replaced."""
    copy: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in document.items()}
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node[key] = dict(node.get(key) or {})
        node = node[key]
    node[last] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "field", "says"),
    [
        ("default.fax", True, "default.fax", "not a known field"),
        ("agents.coding-agent.pager", {"enabled": True}, "agents.coding-agent.pager", "not a known field"),
        ("default.sms.min_priority", "urgent", "default.sms.min_priority", "'critical'"),
        ("default.min_priority", "everything", "default.min_priority", "'low'"),
        ("default.push", "sometimes", "default.push", "true, false or an object"),
        ("time_zone", "Europe/Atlantis", "time_zone", "IANA time zone"),
        ("quiet_hours.window", "10pm-7am", "quiet_hours.window", "HH:MM-HH:MM"),
        ("quiet_hours.window", "22:00-22:00", "quiet_hours.window", "another time"),
        ("quiet_hours.during", "drop", "quiet_hours.during", "'digest'"),
        ("digest.hour", 24, "digest.hour", "from 0 to 23"),
        ("digest.cadence", "weekly", "digest.cadence", "'daily'"),
        ("digest.priorities", "high", "digest.priorities", "'low_and_medium'"),
        ("default.max_per_hour", 0, "default.max_per_hour", "at least 1"),
        ("agents.coding-agent.max_per_hour", -3, "agents.coding-agent.max_per_hour", "at least 1"),
        ("default.sms.max_per_hour", 0, "default.sms.max_per_hour", "at least 1"),
        ("default.max_per_hour", 2.5, "default.max_per_hour", "integer"),
        ("default.notify_resolved", True, "default.notify_resolved", "false or a priority"),
        ("agents.coding-agent.notify_resolved", "urgent", "agents.coding-agent.notify_resolved", "false or a priority"),
    ],
)
async def test_a_bad_field_is_a_422_naming_it_and_nothing_is_saved(
    api: httpx.AsyncClient, store: Store, path: str, value: Any, field: str, says: str
) -> None:
    assert (await api.put(URL, json=EXAMPLE)).status_code == 200
    response = await api.put(URL, json=_set(EXAMPLE, path, value))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["field"] == field
    assert says in error["message"] and error["message"].startswith(f"{field}: ")
    assert [d["field"] for d in error["details"]] == [field]
    assert (await api.get(URL)).json() == EXAMPLE, "a refused update changes nothing"
    assert await store.users.get_preferences("ada") == Preferences.model_validate(EXAMPLE)


async def test_max_per_hour_round_trips_on_the_default_an_agent_and_a_channel(api: httpx.AsyncClient) -> None:
    document = {
        "default": {"max_per_hour": 20, "sms": {"enabled": True, "max_per_hour": 3}},
        "agents": {"noisy-agent": {"max_per_hour": 2, "email": {"max_per_hour": 1}}},
    }
    response = await api.put(URL, json=document)
    assert response.status_code == 200, response.text
    assert (await api.get(URL)).json() == document


async def test_a_refused_first_save_saves_nothing(api: httpx.AsyncClient, store: Store) -> None:
    response = await api.put(URL, json=_set(EXAMPLE, "time_zone", "Nowhere/Special"))
    assert response.status_code == 422
    assert "Nowhere" not in response.text
    assert await store.users.get_preferences("ada") == Preferences()
