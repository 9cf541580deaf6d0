"""Silences through the CLI (in-process, on HERALD_HOME's store), the MCP tools (the SDK's client over streamable
HTTP, in this process) and HeraldClient, each ending with a notification held or let through by the real worker."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.adapters.store import Store
from herald.domain.silences import SilenceProblem
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    NotificationStatus,
    Silence,
    SilenceState,
    utcnow,
)
from herald.services.auth import issue_token
from herald_cli import app
from herald_cli.silences import parse_duration
from tests.conftest import Harness
from tests.starter.test_mcp import http_server, http_session, name, ok, outcome, refused


def cli(home: Path, *args: str) -> tuple[int, str, str]:
    env = {k: None for k in os.environ if k.startswith(("HERALD_", "TEMPORAL_"))}
    result = CliRunner().invoke(app, list(args), env={**env, "HERALD_HOME": str(home)})
    return result.exit_code, result.stdout, result.stderr


def test_durations() -> None:
    assert parse_duration("90m") == timedelta(minutes=90) and parse_duration("1d") == timedelta(days=1)
    for bad in ("", "2", "1.5h", "-1h", "2w"):
        with pytest.raises(ValueError, match="a whole number and a unit"):
            parse_duration(bad)


def test_cli_adds_lists_and_expires_silences(tmp_path: Path) -> None:
    """Synchronous: the commands run their own event loop, as from a shell."""
    home = tmp_path / "home"
    code, out, err = cli(home, "silence", "add", "--agent", "deploy-bot", "--for", "2h", "--comment", "deploy")
    assert code == 0, err
    silence_id = out.strip()
    code, out, err = cli(home, "silence", "list")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["ID", "STATE", "MATCHES", "ENDS", "COMMENT"]
    assert row.split()[:4] == [silence_id, "active", "agent=deploy-bot", "<=high"]

    code, out, err = cli(home, "silence", "expire", silence_id)
    assert code == 0 and out.startswith(f"expired silence {silence_id} at "), err
    assert cli(home, "silence", "list")[1] == "no silences\n"
    code, out, _ = cli(home, "silence", "list", "--all", "--json")
    [listed] = json.loads(out)["silences"]
    assert listed["silence_id"] == silence_id and listed["state"] == "expired" and listed["created_by"] == "cli"
    assert cli(home, "silence", "expire", "nope")[0:3:2] == (1, "error: no silence nope\n")

    async def stored() -> Silence | None:
        store = await Store.open(f"sqlite+aiosqlite:///{(home / 'herald.db').resolve()}")
        try:
            return await store.silences.get_silence(silence_id)
        finally:
            await store.close()

    found = asyncio.run(stored())
    assert found is not None and found.matchers.agent_id == "deploy-bot" and found.comment == "deploy"


def test_cli_refuses_bad_silences_naming_the_field(tmp_path: Path) -> None:
    home = tmp_path / "home"
    refusals = {
        ("--for", "1h", "--comment", "x"): "error: matchers: needs at least one of agent_id, rule, user_id, dedup_key",
        ("--agent", "a", "--comment", "x"): "error: give --ends-at or --for (one of them)",
        ("--agent", "a", "--for", "soon", "--comment", "x"): "error: --for: expected a whole number and a unit",
        (
            "--agent",
            "a",
            "--ends-at",
            "2020-01-01T00:00:00Z",
            "--comment",
            "x",
        ): "error: ends_at: must be in the future",
        ("--agent", "a", "--max-priority", "urgent", "--for", "1h", "--comment", "x"): "error: matchers.max_priority",
        ("--agent", "a", "--for", "1h", "--comment", " "): "error: comment: must not be empty",
    }
    for args, message in refusals.items():
        code, _, err = cli(home, "silence", "add", *args)
        assert code == 2 and err.startswith(message), (args, err)
    assert cli(home, "silence", "list", "--all")[1] == "no silences\n"


async def test_mcp_tools_silence_the_keys_own_agent(herald: Harness) -> None:
    agent, other, user = name("agent"), name("other"), name("user")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    key = await issue_token(herald.store, "agent", agent)
    other_key = await issue_token(herald.store, "agent", other)
    ends_at = (utcnow() + timedelta(hours=1)).isoformat()

    async with http_server(herald) as url:
        async with http_session(url, key) as session:
            made = ok(
                await session.call_tool("add_silence", {"ends_at": ends_at, "comment": "incident", "user_id": user})
            )
            assert made["matchers"]["agent_id"] == agent and made["state"] == "active"
            assert made["created_by"] == f"agent:{agent}"
            assert f"can't act as {other}" in refused(
                await session.call_tool("add_silence", {"ends_at": ends_at, "comment": "x", "agent_id": other})
            )
            assert "comment: must not be empty" in refused(
                await session.call_tool("add_silence", {"ends_at": ends_at, "comment": " "})
            )
            assert "ends_at: must be in the future" in refused(
                await session.call_tool("add_silence", {"ends_at": "2020-01-01T00:00:00Z", "comment": "x"})
            )
            sent = ok(await session.call_tool("notify_user", {"user_id": user, "title": "hi", "channels": ["email"]}))
            held = await outcome(herald, sent["notification_id"])
            assert held.status is NotificationStatus.silenced and held.silence_id == made["silence_id"]
            status = ok(await session.call_tool("notification_status", {"notification_id": sent["notification_id"]}))
            assert status["status"] == "silenced"
            listed = ok(await session.call_tool("list_silences", {}))["silences"]
            assert [s["silence_id"] for s in listed] == [made["silence_id"]]

        async with http_session(url, other_key) as session:
            assert ok(await session.call_tool("list_silences", {}))["silences"] == []
            assert f"agent {other} has no silence" in refused(
                await session.call_tool("expire_silence", {"silence_id": made["silence_id"]})
            )

        async with http_session(url, key) as session:
            done = ok(await session.call_tool("expire_silence", {"silence_id": made["silence_id"]}))
            assert done["state"] == SilenceState.expired
            sent = ok(
                await session.call_tool("notify_user", {"user_id": user, "title": "hi again", "channels": ["email"]})
            )
            assert (await outcome(herald, sent["notification_id"])).status is NotificationStatus.delivered


async def test_the_client_adds_lists_and_expires_silences(herald: Harness) -> None:
    agent, user = name("agent"), name("user")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    store = herald.store
    with pytest.raises(SilenceProblem, match="ends_at: must be in the future"):
        await herald.client.add_silence(
            {"matchers": {"agent_id": agent}, "ends_at": "2020-01-01T00:00:00Z", "comment": "x"}, store=store
        )
    made = await herald.client.add_silence(
        {"matchers": {"agent_id": agent}, "ends_at": utcnow() + timedelta(hours=1), "comment": "deploy"}, store=store
    )
    assert made.created_by == "client"
    assert [s.silence_id for s in await herald.client.list_silences(agent_id=agent, store=store)] == [made.silence_id]

    def note(title: str) -> AgentNotification:
        return AgentNotification(agent_id=agent, user_id=user, title=title, channels=[ChannelName.email])

    held = await (await herald.client.notify(note("during"))).outcome()
    assert held.status is NotificationStatus.silenced and held.silence_id == made.silence_id
    expired = await herald.client.expire_silence(made.silence_id, store=store)
    assert expired is not None and expired.ends_at <= utcnow()
    assert await herald.client.list_silences(agent_id=agent, store=store) == []
    assert await herald.client.expire_silence("nope", store=store) is None
    after = await (await herald.client.notify(note("after"))).outcome()
    assert after.status is NotificationStatus.delivered
