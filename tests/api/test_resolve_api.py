"""`POST /v1/notifications/resolve`: an agent key resolves its own agent's notifications only, the admin any; the
reply names what it resolved or says nothing was open; bad bodies are a 422 naming the field."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from herald.api.app import create_app
from herald.domain import resolve
from herald.models import Contact, NotificationStatus, Preferences
from tests.api.test_auth import ADMIN_KEY, Secured, assert_no_secrets, issue_all
from tests.conftest import Harness, quiet_hours_now
from tests.fakes.http import FakeHTTPServer

BODY = {"agent_id": "support-agent", "dedup_key": "disk-full/db-1"}


async def test_only_its_agent_or_the_admin_resolves_and_nothing_open_says_so(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    settings = herald.settings.changed(auth=True, admin_key=SecretStr(ADMIN_KEY))
    app = create_app(settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        secured = Secured(api, await issue_all(herald.store), [])
        for who, status in (("other-agent", 403), ("ada", 403), (None, 401)):
            response = await secured.call("POST", "/v1/notifications/resolve", who, BODY)
            assert response.status_code == status, who
        refused = await secured.call("POST", "/v1/notifications/resolve", "other-agent", BODY)
        assert refused.json()["error"]["field"] == "agent_id"

        nothing = await secured.call("POST", "/v1/notifications/resolve", "support-agent", BODY)
        assert nothing.status_code == 200, nothing.text
        assert nothing.json() == {
            "agent_id": "support-agent",
            "resolved": [],
            "message": "nothing to resolve: support-agent has no open notification with that dedup_key",
        }

        # A quiet-hours hold: the notification waits on a timer, open, until the resolve ends it.
        await herald.store.users.put_contact("ada", Contact(webhook_url=fake_http.script("/resolve-held", 200)))
        await herald.store.users.put_preferences(
            "ada", Preferences.model_validate({"time_zone": "UTC", "quiet_hours": {"window": quiet_hours_now()}})
        )
        sent = await secured.call(
            "POST",
            "/v1/notifications",
            "support-agent",
            {**BODY, "user_id": "ada", "title": "Disk 95% on db-1", "channels": ["webhook"]},
        )
        assert sent.status_code == 202, sent.text
        nid = sent.json()["notification_id"]
        query = resolve.open_query("support-agent", BODY["dedup_key"])
        for _ in range(400):
            held = (await herald.client.status(nid)).held_until is not None
            if held and (await herald.client.temporal.count_workflows(query)).count == 1:
                break
            await asyncio.sleep(0.025)

        done = await secured.call("POST", "/v1/notifications/resolve", "admin", BODY)
        assert done.status_code == 200, done.text
        assert done.json()["resolved"] == [nid]
        outcome = await herald.client.get_handle(nid).outcome()
        assert outcome.status is NotificationStatus.resolved
        assert outcome.resolved is not None and outcome.resolved.by == "admin"
        assert fake_http.received("/resolve-held") == [], "the held notification was never sent"
        view = await secured.call("GET", f"/v1/notifications/{nid}", "ada")
        assert view.json()["status"] == "resolved"
        assert_no_secrets(secured.seen, secured.tokens)


async def test_a_bad_body_is_a_422_naming_the_field(herald: Harness) -> None:
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        for body, field in (
            ({"agent_id": "support-agent"}, "dedup_key"),
            ({"agent_id": "support-agent", "dedup_key": ""}, "dedup_key"),
            ({"agent_id": "support-agent", "dedup_key": "x" * 201}, "dedup_key"),
            ({"agent_id": "bad agent", "dedup_key": "k"}, "agent_id"),
        ):
            response = await api.post("/v1/notifications/resolve", json=body)
            assert response.status_code == 422, body
            assert response.json()["error"]["field"] == field, response.text


async def test_a_delivered_notification_resolves_through_the_route_once(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """Its workflow completed `delivered` before the resolve: the route lists it, GET says `resolved` and who
    resolved, and a second resolve is the no-op that says so."""
    body = {"agent_id": "support-agent", "dedup_key": "disk-full/db-2"}
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as api:
        await herald.store.users.put_contact("bea", Contact(webhook_url=fake_http.script("/resolve-delivered", 200)))
        sent = await api.post(
            "/v1/notifications", json={**body, "user_id": "bea", "title": "Disk 95% on db-2", "channels": ["webhook"]}
        )
        assert sent.status_code == 202, sent.text
        nid = sent.json()["notification_id"]
        assert (await herald.client.get_handle(nid).outcome()).status is NotificationStatus.delivered
        query = resolve.ended_query("support-agent", body["dedup_key"])
        for _ in range(400):
            if (await herald.client.temporal.count_workflows(query)).count == 1:
                break
            await asyncio.sleep(0.025)

        done = await api.post("/v1/notifications/resolve", json=body)
        assert done.status_code == 200, done.text
        assert done.json() == {
            "agent_id": "support-agent",
            "resolved": [nid],
            "message": "resolved 1 open notification of support-agent",
        }
        await herald.client.temporal.get_workflow_handle(resolve.resolve_ended_id(nid)).result()
        view = (await api.get(f"/v1/notifications/{nid}")).json()
        assert view["status"] == "resolved" and view["resolved"]["by"] == "api"
        listed = (await api.get("/v1/notifications", params={"agent_id": "support-agent", "status": "resolved"})).json()
        assert nid in [item["notification_id"] for item in listed["items"]]

        again = await api.post("/v1/notifications/resolve", json=body)
        assert again.json()["resolved"] == [] and again.json()["message"].startswith("nothing to resolve")
