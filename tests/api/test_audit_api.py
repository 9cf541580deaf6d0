"""GET /v1/notifications: the delivery audit list, its pages, its filters and who may see what."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from herald.adapters.store import Store
from herald.adapters.store import schema as tables
from herald.api.app import create_app
from herald.api.auth import ADMIN, ANYONE, AuthError, Caller
from herald.api.views import InvalidCursor, decode_cursor, encode_cursor, listing_scope
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelResult,
    ChannelStatus,
    Contact,
    NotificationOutcome,
    NotificationStatus,
    Priority,
)
from herald.services.auth import issue_token
from tests.conftest import Harness, make_settings
from tests.starter.cli import clean_env, run_cli

ADMIN_KEY = "admin-" + "q" * 40
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# --- pure parts ----------------------------------------------------------------------------------


def test_cursor_round_trips_and_refuses_anything_else() -> None:
    at = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=UTC)
    cursor = encode_cursor(at, "n-1")
    assert "=" not in cursor and "n-1" not in cursor  # opaque, URL-safe
    assert decode_cursor(cursor) == (at, "n-1")
    naive = base64.urlsafe_b64encode(b'["2024-05-01T14:00:00","n-1"]').decode()
    for bad in [
        "",
        "not a cursor",
        "e30",
        naive,
        base64.urlsafe_b64encode(b'["2024-05-01T14:00:00+00:00",3]').decode(),
    ]:
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_listing_scope_holds_tokens_to_their_own() -> None:
    ada, bot = Caller("user", "ada"), Caller("agent", "deploy-bot")
    assert listing_scope(ADMIN, None, None) == (None, None)
    assert listing_scope(ADMIN, "bob", "x") == ("bob", "x")
    assert listing_scope(ANYONE, "bob", None) == ("bob", None)
    assert listing_scope(ada, None, None) == ("ada", None)  # no filter: its own
    assert listing_scope(ada, "ada", "deploy-bot") == ("ada", "deploy-bot")  # narrowing is fine
    assert listing_scope(bot, None, "deploy-bot") == (None, "deploy-bot")
    assert listing_scope(bot, "ada", None) == ("ada", "deploy-bot")
    for caller, user, agent, field in [(ada, "bob", None, "user_id"), (bot, None, "other-bot", "agent_id")]:
        with pytest.raises(AuthError) as refused:
            listing_scope(caller, user, agent)
        assert (refused.value.status, refused.value.field) == (403, field)


# --- against a real worker -----------------------------------------------------------------------


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        yield client


async def test_list_shows_finished_notifications_newest_first_in_pages(herald: Harness, api: httpx.AsyncClient) -> None:
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    ids = []
    for title, channels in [("first", ["email"]), ("second", ["sms"]), ("third", ["email"])]:
        note = AgentNotification(agent_id="deploy-bot", user_id="ada", title=title, channels=channels)
        await (await herald.client.notify(note)).outcome()
        ids.append(note.notification_id)

    listed = await api.get("/v1/notifications")
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert [item["notification_id"] for item in page["items"]] == ids[::-1]
    assert page["next_cursor"] is None
    third = page["items"][0]
    assert third["status"] == "delivered" and third["workflow_id"] == f"notification/{ids[2]}"
    assert third["channels"]["email"]["status"] == "delivered"
    assert "attempts" not in third["channels"]["email"]  # the single GET has them
    assert datetime.fromisoformat(third["completed_at"]) >= datetime.fromisoformat(page["items"][1]["completed_at"])

    failed = (await api.get("/v1/notifications", params={"status": "no_channel"})).json()["items"]
    assert [item["notification_id"] for item in failed] == [ids[1]]  # medium priority: SMS is not allowed
    assert (await api.get("/v1/notifications", params={"user_id": "bob"})).json()["items"] == []

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/notifications", params=params)).json()
        seen += [item["notification_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


async def test_list_refuses_bad_parameters_naming_them(api: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"cursor": "garbage"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"status": "lost"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"user_id": "no spaces"}, "user_id"),
    ]
    for params, field in cases:
        response = await api.get("/v1/notifications", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] == field


# --- who sees what -------------------------------------------------------------------------------


def outcome(notification_id: str, user_id: str, agent_id: str) -> NotificationOutcome:
    return NotificationOutcome(
        notification_id=notification_id,
        workflow_id=f"notification/{notification_id}",
        agent_id=agent_id,
        user_id=user_id,
        priority=Priority.high,
        status=NotificationStatus.delivered,
        channels={ChannelName.push: ChannelResult(channel=ChannelName.push, status=ChannelStatus.delivered)},
    )


@pytest.fixture
async def secured(store: Store, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    for i, (user, agent) in enumerate([("ada", "deploy-bot"), ("bob", "deploy-bot"), ("ada", "other-bot")]):
        await store.notifications.record_outcome(outcome(f"n{i}", user, agent))
        n = tables.notifications
        async with store.engine.begin() as conn:
            await conn.execute(
                sa.update(n).where(n.c.notification_id == f"n{i}").values(completed_at=T0 + timedelta(minutes=i))
            )
    tokens = {
        "ada": await issue_token(store, "user", "ada"),
        "deploy-bot": await issue_token(store, "agent", "deploy-bot"),
        "admin": ADMIN_KEY,
    }
    app = create_app(make_settings(tmp_path, auth=True, admin_key=ADMIN_KEY), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        yield client, tokens


async def test_tokens_list_only_their_own(secured: tuple[httpx.AsyncClient, dict[str, str]]) -> None:
    api, tokens = secured

    async def ids(who: str | None, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        response = await api.get("/v1/notifications", params=params, headers=headers)
        if response.status_code != 200:
            return response.status_code, response.json()["error"]["field"]
        return [item["notification_id"] for item in response.json()["items"]]

    assert await ids(None) == (401, None)
    assert await ids("admin") == ["n2", "n1", "n0"]
    assert await ids("admin", user_id="bob") == ["n1"]
    assert await ids("ada") == ["n2", "n0"]  # forced to her own
    assert await ids("ada", agent_id="other-bot") == ["n2"]
    assert await ids("ada", user_id="bob") == (403, "user_id")
    assert await ids("deploy-bot") == ["n1", "n0"]  # what its agent sent, to anyone
    assert await ids("deploy-bot", user_id="ada") == ["n0"]
    assert await ids("deploy-bot", agent_id="other-bot") == (403, "agent_id")


# --- the same list from the command line ---------------------------------------------------------


async def test_herald_status_without_an_id_lists_them(store: Store, tmp_path: Path) -> None:
    """`herald status` reads the audit record from the store alone: no Temporal needed."""
    for i, (user, agent) in enumerate([("ada", "deploy-bot"), ("bob", "deploy-bot"), ("ada", "other-bot")]):
        await store.notifications.record_outcome(outcome(f"n{i}", user, agent))
    await store.notifications.record_outcome(
        outcome("n9", "ada", "deploy-bot").model_copy(update={"status": NotificationStatus.failed})
    )
    env = clean_env(HERALD_HOME=str(tmp_path), TEMPORAL_ADDRESS="127.0.0.1:1")

    code, out, err = await run_cli(env, "status", "--user", "ada", "--limit", "2")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split() == ["RECORDED", "NOTIFICATION", "STATUS", "PRIORITY", "AGENT", "USER", "CHANNELS"]
    assert [row.split()[2] for row in rows] == ["n9", "n2"]  # newest first; the date is two words
    assert rows[0].split()[3:] == ["failed", "high", "deploy-bot", "ada", "push:delivered"]
    assert "# more: --cursor " in err
    cursor = err.split("--cursor ")[1].split()[0]
    code, out, err = await run_cli(env, "status", "--user", "ada", "--status", "delivered", "--cursor", cursor)
    assert code == 0, err
    assert [row.split()[2] for row in out.splitlines()[1:]] == ["n0"]
