"""Heartbeats from the entry points, against a real worker: `herald ping` and `herald heartbeats set|list|delete`
as processes, and the MCP tools `set_heartbeat`, `ping_heartbeat`, `list_heartbeats` through the MCP SDK's own
client over streamable HTTP. A miss is seen where it lands: the outbox file of the email it sent."""

from __future__ import annotations

import json
import uuid

from temporalio.testing import WorkflowEnvironment

from herald.models import Contact, HeartbeatState, HeartbeatStatus, heartbeat_workflow_id
from herald.services.auth import issue_token
from tests.conftest import Harness
from tests.faults.procs import eventually
from tests.starter.cli import run_cli
from tests.starter.test_cli import cli_env
from tests.starter.test_mcp import http_server, http_session, ok, refused


def emails_titled(herald: Harness, words: str) -> int:
    outbox = herald.outbox("email")
    return sum(words in f.read_text() for f in outbox.glob("*.json")) if outbox.exists() else 0


async def test_the_cli_sets_pings_lists_and_deletes(herald: Harness, temporal_env: WorkflowEnvironment) -> None:
    env = cli_env(herald, temporal_env)
    agent = f"backup-{uuid.uuid4().hex[:8]}"
    code, out, err = await run_cli(
        env, "heartbeats", "set", "nightly", "--agent", agent, "--every", "3600", "--user", "ada", "--grace", "60"
    )
    assert code == 0, err
    assert json.loads(out)["notify"] == {"user_id": "ada", "priority": "high", "channels": None}
    code, out, err = await run_cli(env, "ping", "nightly", "--agent", agent)
    assert code == 0, err
    pinged_at = json.loads(out)["pinged_at"]

    async def listed() -> list[HeartbeatStatus]:
        code, out, err = await run_cli(env, "heartbeats", "list", "--agent", agent, "--json")
        assert code == 0, err
        return [HeartbeatStatus.model_validate(h) for h in json.loads(out)["heartbeats"]]

    async def ping_seen() -> bool:
        found = await listed()
        return bool(found) and found[0].last_ping_at.isoformat() == pinged_at.replace("Z", "+00:00")

    await eventually(ping_seen, "the ping in `herald heartbeats list`", 60)
    code, out, err = await run_cli(env, "heartbeats", "list", "--agent", agent)
    assert code == 0, err
    [header, row] = out.splitlines()
    assert header.split()[:3] == ["AGENT", "NAME", "STATE"] and row.split()[:5] == [
        agent,
        "nightly",
        "up",
        "3600s",
        "60s",
    ]
    code, out, err = await run_cli(env, "heartbeats", "delete", "nightly", "--agent", agent)
    assert code == 0, err
    await herald.client.temporal.get_workflow_handle(heartbeat_workflow_id(agent, "nightly")).result()
    code, _, err = await run_cli(env, "ping", "nightly", "--agent", agent)
    assert code == 1 and f"agent {agent} has no heartbeat nightly" in err
    code, _, err = await run_cli(
        env, "heartbeats", "set", "Bad Name", "--agent", agent, "--every", "0", "--user", "ada"
    )
    assert code == 2 and "error: every_seconds: Input should be greater than or equal to 1" in err
    assert "error: name: must be 1-64 characters" in err


async def test_mcp_tools_set_ping_and_list_the_keys_own_heartbeat(herald: Harness) -> None:
    """Missed (an email to its person, in the outbox), then pinged back over MCP: "checked in again"."""
    agent, other = f"backup-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    await herald.store.users.put_contact("ops", Contact(email="ops@example.com"))
    key, other_key = await issue_token(herald.store, "agent", agent), await issue_token(herald.store, "agent", other)
    async with http_server(herald) as url, http_session(url, key) as session, http_session(url, other_key) as theirs:
        fast = {"name": "loop", "every_seconds": 1, "user_id": "ops", "channels": ["email"]}
        spec = ok(await session.call_tool("set_heartbeat", fast))
        assert (spec["agent_id"], spec["notify"]["priority"]) == (agent, "high")
        await eventually(lambda: emails_titled(herald, "loop missed its check-in") == 1, "the miss emailed", 30)
        [missed] = ok(await session.call_tool("list_heartbeats", {}))["heartbeats"]
        assert missed["state"] == HeartbeatState.missed.value
        assert ok(await theirs.call_tool("list_heartbeats", {}))["heartbeats"] == [], "another key sees its own only"
        assert "has no heartbeat loop" in refused(await theirs.call_tool("ping_heartbeat", {"name": "loop"}))
        slow = fast | {"every_seconds": 3600}  # so the resumed heartbeat can't miss again before it is read
        ok(await session.call_tool("set_heartbeat", slow))
        pinged = ok(await session.call_tool("ping_heartbeat", {"name": "loop"}))
        assert pinged["agent_id"] == agent
        await eventually(lambda: emails_titled(herald, "loop checked in again") == 1, "the resume emailed", 30)
        [back] = ok(await session.call_tool("list_heartbeats", {}))["heartbeats"]
        assert back["state"] == "up" and back["every_seconds"] == 3600
        bad = refused(await session.call_tool("set_heartbeat", fast | {"name": "x/y", "every_seconds": 0}))
        assert "name: must be 1-64 characters" in bad and "every_seconds:" in bad
    await herald.client.delete_heartbeat(agent, "loop")
    assert emails_titled(herald, "loop missed its check-in") == 1
