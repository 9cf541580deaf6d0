"""What the browser page calls beyond the public surface: the page itself, /v1/me, read marks, test notifications,
and the audit list carrying what each notification said."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald.adapters.store import Store
from herald.api.app import create_app
from herald.domain.inbox import TEST_AGENT_ID
from herald.models import AgentNotification, ChannelName, Contact
from herald.services.auth import issue_token
from tests.conftest import Harness, make_settings
from tests.starter.cli import clean_env, run_cli

ADMIN_KEY = "admin-" + "w" * 40


def client_for(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test")  # type: ignore[arg-type]


@pytest.fixture
async def secured(tmp_path: Path, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """The API with auth on, as `herald api` runs it, over a bare store (no Temporal needed)."""
    app = create_app(make_settings(tmp_path, auth=True, admin_key=ADMIN_KEY), store=store)
    async with client_for(app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the page ----------------------------------------------------------------------------------------


async def test_the_page_and_its_service_worker_are_served_from_the_root_without_a_token(
    secured: httpx.AsyncClient,
) -> None:
    page = await secured.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/app.js">' in page.text and "<main" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    worker = await secured.get("/sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert 'addEventListener("push"' in worker.text
    for path, kind in [("/app.js", "text/javascript"), ("/app.css", "text/css"), ("/icon.svg", "image/svg+xml")]:
        response = await secured.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind), path
    missing = await secured.get("/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


# --- who am I ----------------------------------------------------------------------------------------


async def test_me_names_the_tokens_principal(secured: httpx.AsyncClient, store: Store) -> None:
    user = await issue_token(store, "user", "ada")
    agent = await issue_token(store, "agent", "deploy-bot")
    assert (await secured.get("/v1/me", headers=bearer(user))).json() == {
        "kind": "user",
        "user_id": "ada",
        "agent_id": None,
        "auth": True,
    }
    assert (await secured.get("/v1/me", headers=bearer(agent))).json()["agent_id"] == "deploy-bot"
    assert (await secured.get("/v1/me", headers=bearer(ADMIN_KEY))).json()["kind"] == "admin"
    for headers in [{}, bearer("hrt_never-issued")]:
        refused = await secured.get("/v1/me", headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"


async def test_with_auth_off_a_user_token_still_names_its_user(tmp_path: Path, store: Store) -> None:
    app = create_app(make_settings(tmp_path), store=store)
    user = await issue_token(store, "user", "ada")
    async with client_for(app) as client:
        assert (await client.get("/v1/me", headers=bearer(user))).json()["user_id"] == "ada"
        assert (await client.get("/v1/me")).json() == {
            "kind": "anyone",
            "user_id": None,
            "agent_id": None,
            "auth": False,
        }


# --- read marks --------------------------------------------------------------------------------------


async def test_read_marks_by_id_and_mark_all(secured: httpx.AsyncClient, store: Store) -> None:
    ada = bearer(await issue_token(store, "user", "ada"))
    path = "/v1/users/ada/notifications/read"
    assert (await secured.get(path, headers=ada)).json() == {"read_up_to": None, "read_ids": {}}
    marked = await secured.post(path, headers=ada, json={"notification_ids": ["n1"]})
    assert marked.status_code == 200 and list(marked.json()["read_ids"]) == ["n1"]
    everything = await secured.post(path, headers=ada, json={"up_to": "2099-01-01T00:00:00Z"})
    assert everything.json() == {"read_up_to": "2099-01-01T00:00:00Z", "read_ids": {}}, "the mark covers n1"
    assert (await secured.get(path, headers=ada)).json() == everything.json()


async def test_read_marks_are_the_users_own_and_bad_bodies_name_the_field(
    secured: httpx.AsyncClient, store: Store
) -> None:
    ada = bearer(await issue_token(store, "user", "ada"))
    other = await secured.post("/v1/users/bob/notifications/read", headers=ada, json={"notification_ids": ["n1"]})
    assert other.status_code == 403 and other.json()["error"]["field"] == "user_id"
    assert (await secured.get("/v1/users/bob/notifications/read", headers=ada)).status_code == 403
    empty = await secured.post("/v1/users/ada/notifications/read", headers=ada, json={})
    assert empty.status_code == 422 and "notification_ids, up_to" in empty.json()["error"]["message"]
    bad_time = await secured.post("/v1/users/ada/notifications/read", headers=ada, json={"up_to": "yesterday"})
    assert bad_time.status_code == 422 and bad_time.json()["error"]["field"] == "up_to"


# --- test notifications and the audit list, against a real worker --------------------------------------


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(herald.settings.store.home, auth=True, admin_key=ADMIN_KEY)
    app = create_app(settings, store=herald.store, client=herald.client, hub=herald.runtime.hub)
    async with client_for(app) as client:
        yield client


async def test_a_test_notification_goes_through_the_pipeline_on_that_channel_alone(
    api: httpx.AsyncClient, herald: Harness
) -> None:
    ada = bearer(await issue_token(herald.store, "user", "ada"))
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com", webhook_url="http://127.0.0.1:9/hook"))
    sent = await api.post("/v1/users/ada/test-notification", headers=ada, json={"channel": "email"})
    assert sent.status_code == 202, sent.text
    body = sent.json()
    outcome = await herald.client.get_handle(body["notification_id"]).outcome()
    assert outcome.agent_id == TEST_AGENT_ID and outcome.status == "delivered"
    assert list(outcome.channels) == [ChannelName.email]
    assert (herald.outbox("email") / f"{body['notification_id']}.json").exists()
    view = (await api.get(body["status_url"], headers=ada)).json()
    assert view["channels"]["email"]["status"] == "delivered"


async def test_a_failing_test_channel_does_not_fall_back_to_another(api: httpx.AsyncClient, herald: Harness) -> None:
    ada = bearer(await issue_token(herald.store, "user", "ada"))
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))  # no phone: SMS fails for good
    sent = await api.post("/v1/users/ada/test-notification", headers=ada, json={"channel": "sms"})
    outcome = await herald.client.get_handle(sent.json()["notification_id"]).outcome()
    assert outcome.status == "failed" and list(outcome.channels) == [ChannelName.sms], "no email instead"
    assert not list(herald.outbox("email").glob("*.json"))


async def test_test_notifications_are_the_users_own_and_name_a_known_channel(
    api: httpx.AsyncClient, herald: Harness
) -> None:
    ada = bearer(await issue_token(herald.store, "user", "ada"))
    other = await api.post("/v1/users/bob/test-notification", headers=ada, json={"channel": "email"})
    assert other.status_code == 403
    bad = await api.post("/v1/users/ada/test-notification", headers=ada, json={"channel": "pigeon"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "channel"


async def test_the_users_list_shows_what_each_notification_said(api: httpx.AsyncClient, herald: Harness) -> None:
    ada = bearer(await issue_token(herald.store, "user", "ada"))
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    first = AgentNotification(
        agent_id="deploy-bot", user_id="ada", title="Deploy finished", body="all green", channels=["email"]
    )
    await (await herald.client.notify(first)).outcome()
    again = first.model_copy(update={"notification_id": "dup-1"})  # same agent, title and user: a duplicate
    assert (await (await herald.client.notify(again)).outcome()).status == "suppressed_duplicate"
    items = {i["notification_id"]: i for i in (await api.get("/v1/notifications", headers=ada)).json()["items"]}
    sent = items[first.notification_id]
    assert (sent["title"], sent["body"]) == ("Deploy finished", "all green")
    assert sent["created_at"].startswith(first.created_at.strftime("%Y-%m-%dT%H:%M:%S"))
    assert items["dup-1"]["title"] is None, "a duplicate was never sent, so nothing was kept"


# --- the login link ---------------------------------------------------------------------------------------


async def test_tokens_issue_link_prints_the_login_link_on_stdout_only(tmp_path: Path) -> None:
    env = clean_env(HERALD_HOME=str(tmp_path), HERALD_PUBLIC_URL="https://herald.example.com")
    code, out, err = await run_cli(env, "tokens", "issue", "ada", "--link")
    assert code == 0, err
    token, link = out.splitlines()
    assert link == f"https://herald.example.com/#token={token}"
    assert token not in err, "stderr may be logged: the token (and so the link) stays off it"
    # Without --link and not on a terminal, stdout is the token alone (tests/starter/test_tokens.py).
