"""`/v1/subscriptions` with auth on: the admin subscribes to anything, an agent key to its own agent only and reads
and deletes only its own, a user token to nothing; the URL goes through the SSRF guard when saved (a 422 naming
`url`); a PUT enables a disabled subscription again; bad bodies are 422s naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.models import utcnow
from tests.api.test_auth import ADMIN_KEY, Secured
from tests.conftest import make_settings

URL = "http://127.0.0.1:9/hook"


def body(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"url": URL, "events": ["notification.delivered", "heartbeat.missed"]}
    values.update(fields)
    return values


async def test_the_admin_saves_lists_and_deletes(secured: Secured, store: Store) -> None:
    made = await secured.call("PUT", "/v1/subscriptions/ops", "admin", body())
    assert made.status_code == 200, made.text
    saved = made.json()
    assert saved["state"] == "enabled" and saved["owner"] == "admin" and saved["failures"] == 0
    assert saved["events"] == ["notification.delivered", "heartbeat.missed"] and saved["agent_id"] is None
    listed = (await secured.call("GET", "/v1/subscriptions", "admin")).json()["subscriptions"]
    assert listed == [saved]
    assert (await secured.call("GET", "/v1/subscriptions/ops", "admin")).json() == saved

    # Disabled after it kept failing, it says so; a PUT enables it again with its failures cleared.
    await store.subscriptions.mark(
        "ops", failures=5, last_error="webhook endpoint answered 500", disable=True, now=utcnow()
    )
    off = (await secured.call("GET", "/v1/subscriptions", "admin")).json()["subscriptions"][0]
    assert off["state"] == "disabled" and off["failures"] == 5 and off["disabled_at"] is not None
    assert off["last_error"] == "webhook endpoint answered 500"
    again = (await secured.call("PUT", "/v1/subscriptions/ops", "admin", body(events=["notification.failed"]))).json()
    assert again["state"] == "enabled" and again["failures"] == 0 and again["last_error"] is None
    assert again["created_at"] == saved["created_at"] and again["events"] == ["notification.failed"]

    gone = await secured.call("DELETE", "/v1/subscriptions/ops", "admin")
    assert gone.status_code == 204
    assert (await secured.call("GET", "/v1/subscriptions", "admin")).json()["subscriptions"] == []
    missing = await secured.call("DELETE", "/v1/subscriptions/ops", "admin")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "no subscription ops", "field": "name"}


async def test_an_agent_key_subscribes_to_its_own_agent_only(secured: Secured) -> None:
    unnamed = await secured.call("PUT", "/v1/subscriptions/mine", "support-agent", body())
    assert unnamed.status_code == 403 and unnamed.json()["error"]["field"] == "agent_id"
    other = await secured.call("PUT", "/v1/subscriptions/mine", "support-agent", body(agent_id="other-agent"))
    assert other.status_code == 403 and other.json()["error"]["field"] == "agent_id"
    own = await secured.call("PUT", "/v1/subscriptions/mine", "support-agent", body(agent_id="support-agent"))
    assert own.status_code == 200, own.text
    assert own.json()["owner"] == "agent:support-agent"

    theirs = await secured.call("PUT", "/v1/subscriptions/theirs", "other-agent", body(agent_id="other-agent"))
    assert theirs.status_code == 200
    listed = (await secured.call("GET", "/v1/subscriptions", "support-agent")).json()["subscriptions"]
    assert [s["name"] for s in listed] == ["mine"]
    assert (await secured.call("GET", "/v1/subscriptions/theirs", "support-agent")).status_code == 404
    assert (await secured.call("DELETE", "/v1/subscriptions/theirs", "support-agent")).status_code == 404
    taken = await secured.call("PUT", "/v1/subscriptions/theirs", "support-agent", body(agent_id="support-agent"))
    assert taken.status_code == 403 and taken.json()["error"]["field"] == "name"
    admin = [s["name"] for s in (await secured.call("GET", "/v1/subscriptions", "admin")).json()["subscriptions"]]
    assert admin == ["mine", "theirs"]


async def test_a_user_token_subscribes_to_nothing(secured: Secured) -> None:
    assert (await secured.call("PUT", "/v1/subscriptions/x", "ada", body(agent_id="support-agent"))).status_code == 403
    assert (await secured.call("GET", "/v1/subscriptions", "ada")).status_code == 403
    assert (await secured.call("GET", "/v1/subscriptions", None)).status_code == 401


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["notification.created"]}, "events"),
        ({"agent_id": "no spaces"}, "agent_id"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_bodies_name_the_field(secured: Secured, fields: dict[str, Any], field: str) -> None:
    refused = await secured.call("PUT", "/v1/subscriptions/bad", "admin", body(**fields))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"].split(".")[0] == field


async def test_a_url_that_resolves_inward_is_refused_when_saved(store: Store, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth=True, admin_key=ADMIN_KEY, allow_private_webhooks=False)
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        refused = await api.put(
            "/v1/subscriptions/inward", json=body(), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "url" and "loopback" in error["message"] and "127.0.0.1" not in error["message"]
    assert await store.subscriptions.get_subscription("inward") is None
