"""`herald mcp`: the MCP SDK's own client against Herald's server, over stdio (the real `herald mcp`
process) and streamable HTTP on 127.0.0.1, with a real worker delivering what the tools start."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

from herald.domain.resolve import open_query
from herald.models import (
    AgentNotification,
    Answer,
    AnswerChannel,
    ChannelName,
    Contact,
    NotificationOutcome,
    Preferences,
    Priority,
    TriggerRule,
)
from herald.services.auth import issue_token
from herald_cli.mcp_server import (
    AgentKeyError,
    AgentKeys,
    HeraldTools,
    ask_deadline,
    bearer_key,
    build_server,
    http_app,
    own_agent,
    problems,
    progress_message,
)
from tests.conftest import Harness, quiet_hours_now
from tests.starter.cli import HERALD, clean_env, run_cli

TOOLS = {
    "notify_user",
    "ask_user",
    "emit_event",
    "notification_status",
    "add_silence",
    "list_silences",
    "expire_silence",
    "resolve_alert",
    "set_heartbeat",
    "ping_heartbeat",
    "list_heartbeats",
    "set_subscription",
    "list_subscriptions",
    "delete_subscription",
}


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def server_env(herald: Harness, temporal_env: WorkflowEnvironment, **values: str) -> dict[str, str]:
    return clean_env(
        HERALD_HOME=str(herald.settings.store.home),
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=herald.client.task_queue,
        **values,
    )


def text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


def refused(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    return text(result)


async def with_contact(herald: Harness, user: str) -> None:
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))


async def outcome(herald: Harness, notification_id: str) -> NotificationOutcome:
    return await asyncio.wait_for(herald.client.get_handle(notification_id).outcome(), 60)


@asynccontextmanager
async def stdio_session(env: dict[str, str], *args: str) -> AsyncIterator[ClientSession]:
    """`herald mcp` as an MCP client starts it: a subprocess speaking JSON-RPC on stdin/stdout."""
    params = StdioServerParameters(command=HERALD, args=["mcp", *args], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def http_server(herald: Harness, configured: str | None = None, progress: float = 0.2) -> AsyncIterator[str]:
    """Herald's MCP app on a free loopback port, in this process, with the harness's client (its fast policy)."""
    keys = AgentKeys(herald.store, "http", configured)
    app = http_app(build_server(HeraldTools(herald.client, herald.store, keys, progress)), keys)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


# --- pure pieces ---------------------------------------------------------------------------------------


def test_bearer_key_reads_only_a_bearer_authorization() -> None:
    assert bearer_key({"authorization": "Bearer hrk_abc"}) == "hrk_abc"
    assert bearer_key({"Authorization": "bearer  hrk_abc "}) == "hrk_abc"
    assert bearer_key({"authorization": "Basic dXNlcjpwYXNz"}) is None
    assert bearer_key({"authorization": "Bearer "}) is None
    assert bearer_key({}) is None


def test_ask_deadline() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert ask_deadline(now, None, 90) == now + timedelta(seconds=90)
    assert ask_deadline(now, now + timedelta(days=2), None) == now + timedelta(days=2)
    assert ask_deadline(now, None, None) == now + timedelta(hours=1)
    with pytest.raises(ToolError, match="timeout_seconds: give respond_by or timeout_seconds, not both"):
        ask_deadline(now, now, 5)


def test_own_agent_refuses_another_agent() -> None:
    own_agent("deploy-bot", None)
    own_agent("deploy-bot", "deploy-bot")
    with pytest.raises(ToolError, match="agent_id: this server speaks for agent deploy-bot; it can't act as ops"):
        own_agent("deploy-bot", "ops")


def test_problems_name_fields_and_never_echo_values() -> None:
    with pytest.raises(ValidationError) as caught:
        AgentNotification.model_validate({"agent_id": "a", "user_id": "u", "title": "x" * 300, "body": "secret-body"})
    message = problems(caught.value)
    assert message.startswith("title: is 300 characters; the limit is 200")
    assert "xxxx" not in message


def test_progress_message_says_status_and_channels_not_text() -> None:
    deadline = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
    assert progress_message("n1", None, deadline).startswith("notification n1: starting;")
    live = NotificationOutcome.model_validate(
        {
            "notification_id": "n1",
            "workflow_id": "notification/n1",
            "agent_id": "a",
            "user_id": "ada",
            "priority": "high",
            "channels": {"email": {"channel": "email", "status": "delivered"}},
        }
    )
    assert progress_message("n1", live, deadline) == (
        "notification n1: pending (email delivered); waiting for ada's answer until 2026-11-21T17:00:00+00:00"
    )
    live.acknowledged = Answer(action_id="ack", user_id="ada", channel=AnswerChannel.push, answered_at=deadline)
    assert "(email delivered); acknowledged via push; waiting" in progress_message("n1", live, deadline)


async def test_agent_keys_resolve_through_the_store(herald: Harness) -> None:
    key = await issue_token(herald.store, "agent", "deploy-bot")
    user_token = await issue_token(herald.store, "user", "ada")
    assert await AgentKeys(herald.store, "stdio", key).agent_for(None) == "deploy-bot"
    for configured in (None, user_token, "hrk_never-issued"):
        with pytest.raises(AgentKeyError, match=r"^HERALD_AGENT_KEY \(or --agent-key\): ") as caught:
            await AgentKeys(herald.store, "stdio", configured).agent_for(None)
        assert "hrt_" not in str(caught.value) and "hrk_" not in str(caught.value)
    http = AgentKeys(herald.store, "http")
    assert await http.agent_for({"authorization": f"Bearer {key}"}) == "deploy-bot"
    with pytest.raises(AgentKeyError, match=r"^the Authorization header: an agent key is required"):
        await http.agent_for({})
    other = await issue_token(herald.store, "agent", "ops-bot")
    with pytest.raises(AgentKeyError, match="only the agent key it was started with"):
        await AgentKeys(herald.store, "http", key).agent_for({"authorization": f"Bearer {other}"})


# --- stdio: the real `herald mcp` process ---------------------------------------------------------------


async def test_stdio_tools_notify_status_and_refusals(herald: Harness, temporal_env: WorkflowEnvironment) -> None:
    agent, other_agent, user = name("agent"), name("other"), name("user")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    env = server_env(herald, temporal_env, HERALD_AGENT_KEY=key)

    async with stdio_session(env) as session:
        assert session.instructions is not None and f"agent {agent}" in session.instructions
        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(listed) == TOOLS
        notify = listed["notify_user"].input_schema
        assert set(notify["required"]) == {"title"}  # and one of user_id or group
        assert {"user_id", "group"} <= set(notify["properties"])
        assert {"body", "priority", "channels", "notification_id", "dedup_key", "metadata"} <= set(notify["properties"])
        assert listed["notify_user"].output_schema is not None
        assert "notification_id" in listed["notify_user"].output_schema["properties"]
        ask = listed["ask_user"].input_schema
        assert set(ask["required"]) == {"question", "actions"}
        assert {"respond_by", "timeout_seconds", "user_id", "group", "quorum"} <= set(ask["properties"])
        assert set(listed["emit_event"].input_schema["required"]) == {"metrics"}
        assert listed["notification_status"].input_schema["required"] == ["notification_id"]
        assert listed["notification_status"].annotations is not None
        assert listed["notification_status"].annotations.read_only_hint is True

        sent = ok(
            await session.call_tool(
                "notify_user",
                {"user_id": user, "title": "Deploy finished", "priority": "high", "channels": ["email"]},
            )
        )
        notification_id = sent["notification_id"]
        assert sent["workflow_id"] == f"notification/{notification_id}"
        done = await outcome(herald, notification_id)
        assert done.agent_id == agent and done.user_id == user and done.status.value == "delivered"
        assert (herald.outbox("email") / f"{notification_id}.json").exists()

        status = ok(await session.call_tool("notification_status", {"notification_id": notification_id}))
        assert status["status"] == "delivered" and status["user_id"] == user and status["priority"] == "high"
        assert status["channels"] == {"email": {"status": "delivered", "attempts": 1, "last_error": None}}

        # Bad input: refused with the field named, nothing started.
        assert "title: must not be empty" in refused(
            await session.call_tool("notify_user", {"user_id": user, "title": " "})
        )
        assert "channels" in refused(
            await session.call_tool("notify_user", {"user_id": user, "title": "x", "channels": ["fax"]})
        )
        assert "user_id" in refused(await session.call_tool("notify_user", {"title": "no recipient"}))
        assert "metadata: is 17" in refused(
            await session.call_tool("notify_user", {"user_id": user, "title": "x", "metadata": {"k": "v" * 17000}})
        )

        # Never as another agent: not by naming it, and not by reading its notifications.
        assert f"agent_id: this server speaks for agent {agent}; it can't act as {other_agent}" in refused(
            await session.call_tool("notify_user", {"user_id": user, "title": "x", "agent_id": other_agent})
        )
        theirs = await herald.client.notify(
            AgentNotification(agent_id=other_agent, user_id=user, title="theirs", channels=[ChannelName.email])
        )
        await theirs.outcome()
        problem = refused(await session.call_tool("notification_status", {"notification_id": theirs.notification_id}))
        assert f"notification_id: agent {agent} sent no notification {theirs.notification_id}" in problem
        taken = {"user_id": user, "title": "mine", "notification_id": theirs.notification_id}
        assert f"notification_id: {theirs.notification_id} is another agent's notification" in refused(
            await session.call_tool("notify_user", taken)
        )
        assert "no notification nope" in refused(
            await session.call_tool("notification_status", {"notification_id": "nope"})
        )


async def test_stdio_refuses_a_missing_or_wrong_key(
    herald: Harness, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    code, out, err = await run_cli(server_env(herald, temporal_env), "mcp")
    assert code == 2 and out == ""
    assert "error: HERALD_AGENT_KEY (or --agent-key): an agent key is required" in err

    # The SDK's client sees the server go before it serves; the server says why on stderr, without the key.
    wrong = "hrk_" + "x" * 40  # a user token or another kind of key is refused the same way (see above)
    params = StdioServerParameters(
        command=HERALD, args=["mcp", "--agent-key", wrong], env=server_env(herald, temporal_env)
    )
    with (tmp_path / "stderr").open("w") as errlog, pytest.raises(ExceptionGroup) as caught:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
    assert caught.group_contains(MCPError, match="Connection closed")
    err = (tmp_path / "stderr").read_text()
    assert "error: HERALD_AGENT_KEY (or --agent-key): not an agent key Herald issued" in err
    assert wrong not in err


# --- streamable HTTP --------------------------------------------------------------------------------------


async def test_http_emit_event_fires_a_rule_for_the_keys_agent(herald: Harness) -> None:
    agent, other_agent, user = name("agent"), name("other"), name("user")
    await with_contact(herald, user)
    rule = name("errors")
    await herald.store.rules.put_rule(
        TriggerRule(
            name=rule,
            agent_id=agent,
            condition="error_rate > 0.05",
            channels=[ChannelName.email],
            priority=Priority.high,
            user_ids=[user],
            title="Error rate {{ error_rate }} on {{ agent_id }}",
        )
    )
    key = await issue_token(herald.store, "agent", agent)
    other_key = await issue_token(herald.store, "agent", other_agent)

    async with http_server(herald) as url:
        async with http_session(url, key) as session:
            assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS
            quiet = ok(await session.call_tool("emit_event", {"metrics": {"error_rate": 0.01}}))
            assert quiet["fired"] == []
            fired = ok(await session.call_tool("emit_event", {"metrics": {"error_rate": 0.07}, "event_id": name("e")}))
            assert [f["rule"] for f in fired["fired"]] == [rule]
            [notification_id] = fired["fired"][0]["notification_ids"]
            done = await outcome(herald, notification_id)
            assert done.status.value == "delivered" and done.agent_id == agent and done.user_id == user
            status = ok(await session.call_tool("notification_status", {"notification_id": notification_id}))
            assert status["status"] == "delivered"
            assert "metrics.error_rate" in refused(
                await session.call_tool("emit_event", {"metrics": {"error_rate": [1, 2]}})
            )
            assert f"can't act as {other_agent}" in refused(
                await session.call_tool("emit_event", {"metrics": {"error_rate": 0.9}, "agent_id": other_agent})
            )

        # Another key on the same server acts as its own agent: the rule (for `agent`) doesn't see it, and
        # the first agent's notification is not its to read.
        async with http_session(url, other_key) as session:
            assert ok(await session.call_tool("emit_event", {"metrics": {"error_rate": 0.9}}))["fired"] == []
            assert f"agent {other_agent} sent no notification" in refused(
                await session.call_tool("notification_status", {"notification_id": notification_id})
            )
            sent = ok(await session.call_tool("notify_user", {"user_id": user, "title": "hi", "channels": ["email"]}))
            assert (await outcome(herald, sent["notification_id"])).agent_id == other_agent


async def test_http_refuses_requests_without_a_valid_agent_key(herald: Harness) -> None:
    key = await issue_token(herald.store, "agent", name("agent"))
    other_key = await issue_token(herald.store, "agent", name("other"))
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    async with http_server(herald, configured=key) as url, httpx2.AsyncClient() as raw:
        accept = {"accept": "application/json, text/event-stream"}
        for headers, problem in (
            ({}, "the Authorization header: an agent key is required"),
            ({"authorization": "Bearer hrk_never-issued"}, "only the agent key it was started with"),
            ({"authorization": f"Bearer {other_key}"}, "only the agent key it was started with"),
        ):
            response = await raw.post(url, json=initialize, headers=accept | headers)
            assert response.status_code == 401
            body = response.json()["error"]
            assert body["code"] == "unauthorized" and body["field"] == "Authorization" and problem in body["message"]
            assert "hrk_" not in response.text
        with pytest.raises(ExceptionGroup) as caught:  # the SDK client refuses to start the session
            async with http_session(url, other_key):
                pass
        assert caught.group_contains(MCPError, match="error response")
        async with http_session(url, key) as session:
            assert {tool.name for tool in (await session.list_tools()).tools} == TOOLS


async def test_http_cli_serves_the_tools(herald: Harness, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """`herald mcp --transport http` as a process: the key goes in the Authorization header."""
    agent, user = name("agent"), name("user")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        HERALD,
        "mcp",
        "--transport",
        "http",
        "--port",
        str(port),
        env=server_env(herald, temporal_env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with httpx2.AsyncClient() as raw:
            for _ in range(600):
                try:
                    response = await raw.post(url, json={})
                    break
                except httpx2.TransportError:
                    assert process.returncode is None, "herald mcp exited"
                    await asyncio.sleep(0.05)
            assert response.status_code == 401
        async with http_session(url, key) as session:
            sent = ok(
                await session.call_tool("notify_user", {"user_id": user, "title": "over http", "channels": ["email"]})
            )
            assert (await outcome(herald, sent["notification_id"])).agent_id == agent
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert key not in err.decode()
    messages = [json.loads(line)["message"] for line in err.decode().splitlines()]
    assert f"herald mcp: serving on http://127.0.0.1:{port}/mcp" in messages


# --- ask_user: a question, answered through Herald, while progress arrives ----------------------------------


async def test_stdio_ask_user_receives_the_answer_with_progress(
    herald: Harness, temporal_env: WorkflowEnvironment
) -> None:
    agent, user, notification_id = name("agent"), name("user"), name("ask")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    progress: list[tuple[float, float | None, str | None]] = []
    waiting, seen = asyncio.Event(), asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))
        if message and ": pending (email delivered)" in message:
            waiting.set()  # the question reached the person
        if message and "acknowledged via push" in message:
            seen.set()

    arguments = {
        "user_id": user,
        "question": "Deploy the fix to production?",
        "body": "secret-body",
        "actions": [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}],
        "timeout_seconds": 600,
        "channels": ["email"],
        "notification_id": notification_id,
    }
    async with stdio_session(server_env(herald, temporal_env, HERALD_AGENT_KEY=key), "--progress-seconds", "0.2") as s:
        call = asyncio.create_task(s.call_tool("ask_user", arguments, progress_callback=on_progress))
        reached = asyncio.ensure_future(waiting.wait())
        await asyncio.wait({call, reached}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        assert not call.done(), f"ask_user returned before the answer: {call.result()}"
        assert reached.done(), f"no progress said the question reached {user}: {progress}"
        await herald.client.respond(notification_id, "ack", user, "push")  # seen: the question stays open
        await asyncio.wait_for(seen.wait(), 60)
        assert not call.done(), f"an ack is not an answer: {call.result() if call.done() else ''}"
        answer = await herald.client.respond(notification_id, "approve", user, "email")
        result = ok(await asyncio.wait_for(call, 60))

        assert result["notification_id"] == notification_id and result["status"] == "answered"
        assert result["label"] == "Approve"
        assert result["answer"]["action_id"] == "approve" and result["answer"]["user_id"] == user
        assert result["answer"]["channel"] == "email" == answer.channel.value
        assert result["acknowledged"]["action_id"] == "ack" and result["acknowledged"]["channel"] == "push"

        values = [value for value, _, _ in progress]
        assert values == sorted(values) and all(total == pytest.approx(600, abs=30) for _, total, _ in progress)
        assert all(message and message.startswith(f"notification {notification_id}: ") for *_, message in progress)
        assert not any("Deploy the fix" in (m or "") or "secret-body" in (m or "") for *_, m in progress)

        status = ok(await s.call_tool("notification_status", {"notification_id": notification_id}))
        assert status["status"] == "answered" and status["answer"]["action_id"] == "approve"
        assert status["respond_by"] is not None and status["acknowledged"]["action_id"] == "ack"
        # Asking again with the same id waits for the same question: it is answered already.
        again = ok(await s.call_tool("ask_user", arguments))
        assert again["status"] == "answered" and again["answer"]["action_id"] == "approve"


async def test_http_ask_user_expires_and_refuses_bad_deadlines(herald: Harness) -> None:
    agent, user = name("agent"), name("user")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    actions = [{"id": "approve", "label": "Approve"}]
    async with http_server(herald) as url, http_session(url, key) as session:
        question = {"user_id": user, "question": "Refund over the limit?", "actions": actions, "channels": ["email"]}
        result = ok(await session.call_tool("ask_user", question | {"timeout_seconds": 1}))
        assert result["status"] == "expired" and result["answer"] is None and result["label"] is None

        past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        assert "respond_by: must be in the future" in refused(
            await session.call_tool("ask_user", question | {"respond_by": past})
        )
        assert "timeout_seconds: give respond_by or timeout_seconds, not both" in refused(
            await session.call_tool("ask_user", question | {"respond_by": past, "timeout_seconds": 5})
        )
        assert "actions: must offer at least one answer" in refused(
            await session.call_tool("ask_user", question | {"actions": []})
        )
        assert "actions.0.id" in refused(
            await session.call_tool("ask_user", question | {"actions": [{"id": "no spaces", "label": "x"}]})
        )
        theirs = await herald.client.notify(
            AgentNotification(agent_id=name("other"), user_id=user, title="theirs", channels=[ChannelName.email])
        )
        await theirs.outcome()
        taken = question | {"notification_id": theirs.notification_id, "timeout_seconds": 60}
        assert f"notification_id: {theirs.notification_id} is another agent's notification" in refused(
            await session.call_tool("ask_user", taken)
        )
        six = [{"id": f"a{i}", "label": f"A{i}"} for i in range(6)]
        assert "actions: has 6 actions; the limit is 5" in refused(
            await session.call_tool("ask_user", question | {"actions": six})
        )


async def test_http_ask_user_twice_asks_once_and_both_calls_get_the_answer(herald: Harness) -> None:
    """`ask_user` called again with the same question (a retrying agent) used to return `suppressed_duplicate`
    with no answer; now both calls return the person's one answer, and one email went out."""
    agent, user = name("agent"), name("user")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    question = {
        "user_id": user,
        "question": "Roll back the release?",
        "actions": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
        "channels": ["email"],
        "timeout_seconds": 600,
    }
    first_id, again_id = name("ask"), name("ask")
    async with http_server(herald) as url, http_session(url, key) as session:
        first = asyncio.create_task(session.call_tool("ask_user", question | {"notification_id": first_id}))
        for _ in range(400):
            if list(herald.outbox("email").glob("*.json")):
                break
            await asyncio.sleep(0.025)
        again = asyncio.create_task(session.call_tool("ask_user", question | {"notification_id": again_id}))
        for _ in range(400):
            try:
                if (await herald.client.get_handle(again_id).status()).duplicate_of == first_id:
                    break
            except Exception:  # not started yet
                pass
            await asyncio.sleep(0.025)
        await herald.client.respond(first_id, "no", user, "email")
        results = [ok(await asyncio.wait_for(call, 60)) for call in (first, again)]
    assert [(r["notification_id"], r["status"], r["label"]) for r in results] == [
        (first_id, "answered", "No"),
        (again_id, "answered", "No"),
    ]
    assert all(r["answer"]["action_id"] == "no" and r["answer"]["user_id"] == user for r in results)
    assert [p.stem for p in herald.outbox("email").glob("*.json")] == [first_id]


async def test_http_ask_user_asks_a_group_and_returns_every_answer(herald: Harness) -> None:
    """ask_user with a group: each member gets their own question; the first answer decides (quorum "first"), and
    the result holds every answer, who and where, and the decision."""
    from herald.domain.teams import member_notification_id
    from herald.models import Group, utcnow

    agent, ada, grace, group = name("agent"), name("ada"), name("grace"), name("sre")
    for user in (ada, grace):
        await with_contact(herald, user)
    now = utcnow()
    await herald.store.groups.put(Group(name=group, members=[ada, grace], created_at=now, updated_at=now))
    key = await issue_token(herald.store, "agent", agent)
    question = {
        "group": group,
        "question": "Page the database team?",
        "actions": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}],
        "channels": ["email"],
        "timeout_seconds": 600,
        "notification_id": name("ask"),
    }
    async with http_server(herald) as url, http_session(url, key) as session:
        asking = asyncio.create_task(session.call_tool("ask_user", question))
        grace_id = member_notification_id(question["notification_id"], grace)  # type: ignore[arg-type]
        for _ in range(400):
            if (herald.outbox("email") / f"{grace_id}.json").exists():
                break
            await asyncio.sleep(0.025)
        await herald.client.respond(grace_id, "no", grace, "email")
        result = ok(await asyncio.wait_for(asking, 60))
    assert result["status"] == "answered" and result["label"] == "No"
    assert [(a["user_id"], a["action_id"], a["channel"]) for a in result["answers"]] == [(grace, "no", "email")]
    assert result["decision"]["by"] == [grace] and result["decision"]["text"] == f"“No” chosen by {grace}"


async def test_stdio_resolve_alert_resolves_its_agents_open_alert_and_says_when_nothing_is_open(
    herald: Harness, temporal_env: WorkflowEnvironment
) -> None:
    agent, user = name("agent"), name("user")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    # Quiet hours now: the alert waits on its hold, open, until resolve_alert ends it.
    await herald.store.users.put_preferences(
        user, Preferences.model_validate({"time_zone": "UTC", "quiet_hours": {"window": quiet_hours_now()}})
    )
    key = await issue_token(herald.store, "agent", agent)
    env = server_env(herald, temporal_env, HERALD_AGENT_KEY=key)
    async with stdio_session(env) as session:
        nothing = ok(await session.call_tool("resolve_alert", {"dedup_key": "disk-full/db-1"}))
        assert nothing["resolved"] == [] and nothing["message"].startswith("nothing to resolve")
        assert "agent_id" in refused(
            await session.call_tool("resolve_alert", {"dedup_key": "disk-full/db-1", "agent_id": name("other")})
        )
        sent = ok(
            await session.call_tool(
                "notify_user",
                {"user_id": user, "title": "Disk 95%", "channels": ["email"], "dedup_key": "disk-full/db-1"},
            )
        )
        query = open_query(agent, "disk-full/db-1")
        for _ in range(400):
            held = (await herald.client.status(sent["notification_id"])).held_until is not None
            if held and (await herald.client.temporal.count_workflows(query)).count == 1:
                break
            await asyncio.sleep(0.025)
        done = ok(await session.call_tool("resolve_alert", {"dedup_key": "disk-full/db-1"}))
        assert done["resolved"] == [sent["notification_id"]]
    assert (await outcome(herald, sent["notification_id"])).status.value == "resolved"


async def test_http_notify_user_with_a_group_key_is_grouped_and_sent_in_one_message(herald: Harness) -> None:
    from herald.domain.grouping import group_workflow_id
    from tests.faults.procs import eventually

    agent, user = name("agent"), name("user")
    await with_contact(herald, user)
    key = await issue_token(herald.store, "agent", agent)
    grouped = {"channels": ["email"], "group_key": "deploys", "group_wait_seconds": 1, "group_interval_seconds": 1}
    async with http_server(herald) as url, http_session(url, key) as session:
        schema = (await session.list_tools()).tools
        notify = next(t for t in schema if t.name == "notify_user").input_schema
        assert {"group_key", "group_wait_seconds", "group_interval_seconds"} <= set(notify["properties"])
        sent = [
            ok(await session.call_tool("notify_user", {"user_id": user, "title": f"deploy {i}", **grouped}))
            for i in range(2)
        ]
        ids = [s["notification_id"] for s in sent]
        done = [await outcome(herald, i) for i in ids]
        assert {d.status.value for d in done} == {"grouped"}
        assert {d.group_id for d in done} == {group_workflow_id(user, agent, "deploys")}
        status = ok(await session.call_tool("notification_status", {"notification_id": ids[0]}))
        assert status["status"] == "grouped"
        assert "group_key" in refused(
            await session.call_tool("notify_user", {"user_id": user, "title": "x", "group_key": " padded"})
        )

    async def carried() -> bool:
        recorded = [await herald.store.notifications.get_outcome(i) for i in ids]
        return all(o is not None and o.group_delivery is not None for o in recorded)

    await eventually(carried, "the group's message on both")


async def test_http_notify_user_with_an_escalation_policy_escalates_along_it(herald: Harness) -> None:
    from herald.domain.oncall import child_notification_id
    from herald.models import utcnow
    from herald.models.oncall import EscalationPolicy
    from tests.faults.procs import eventually

    agent, owner, ada = name("agent"), name("user"), name("user")
    await with_contact(herald, ada)
    policy = name("policy")
    await herald.store.oncall.put_policy(
        EscalationPolicy(
            name=policy, updated_at=utcnow(), steps=[{"targets": [f"user:{ada}"], "ack_within_seconds": 60}]
        )
    )
    key = await issue_token(herald.store, "agent", agent)
    async with http_server(herald) as url, http_session(url, key) as session:
        args = {"user_id": owner, "title": "disk full", "channels": ["email"], "escalation_policy": policy}
        sent = ok(await session.call_tool("notify_user", args))
    child = child_notification_id(sent["notification_id"], 0, 0, ada)

    async def asked() -> bool:
        try:
            return bool((await herald.client.get_handle(child).status()).delivered_channels)
        except Exception:
            return False

    await eventually(asked, "ada asked")
    await herald.client.respond(child, "ack", ada)
    done = await outcome(herald, sent["notification_id"])
    assert done.status.value == "confirmed" and done.escalation is not None and done.escalation.acked is not None
    assert done.escalation.acked.by == ada
