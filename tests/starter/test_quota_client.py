"""The agent quota on the client's side: HeraldClient raises QuotaExceeded (with retry_after) before Temporal, and
never for a retry of a notification it started; the MCP tools and `herald notify` say so in words, with the wait.
Against a real worker and dev server; `herald notify` as a process sharing its bucket through the real Redis."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
import sqlalchemy as sa
import uvicorn
from redis.asyncio import Redis
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from herald.adapters.quota import DEFAULT_PREFIX, LocalBuckets
from herald.adapters.store import schema
from herald.domain.quota import Limits
from herald.models import AgentNotification, ChannelName, Contact, TriggerRule
from herald.services.auth import issue_token
from herald.services.quota import ALERT_KIND, AgentQuota
from herald.services.rule_cache import RuleCache
from herald_cli.mcp_server import AgentKeys, HeraldTools, build_server, http_app
from starter import HeraldClient
from starter.client import QuotaExceeded
from tests.conftest import REDIS_URL, Harness
from tests.starter.cli import clean_env, run_cli
from tests.starter.test_mcp import http_session, ok, refused


def limited(herald: Harness, rate: float, burst: int) -> HeraldClient:
    """The harness's client with a quota in this process, as HeraldClient.connect gives one."""
    quota = AgentQuota(LocalBuckets(), Limits(rate, burst))
    return HeraldClient(
        herald.client.temporal, herald.client.task_queue, herald.client.policy, store=herald.store, quota=quota
    )


def note(agent: str, **fields: object) -> AgentNotification:
    values: dict[str, object] = {"agent_id": agent, "user_id": "ada", "title": uuid.uuid4().hex, "channels": ["email"]}
    values.update(fields)
    return AgentNotification.model_validate(values)


async def alerts(herald: Harness) -> list[str]:
    t = schema.ops_alerts
    query = sa.select(t.c.message).where(t.c.kind == ALERT_KIND)
    return await herald.store.read(lambda conn: [row.message for row in conn.execute(query)])


async def test_the_client_refuses_past_the_burst_with_a_typed_error_and_starts_nothing(herald: Harness) -> None:
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    agent = f"client-{uuid.uuid4().hex[:8]}"
    client = limited(herald, rate=0.01, burst=2)
    first = await client.notify(note(agent, notification_id=uuid.uuid4().hex))
    await client.notify(note(agent))
    refused_ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    for nid in refused_ids:
        with pytest.raises(QuotaExceeded) as exc:
            await client.notify(note(agent, notification_id=nid))
        assert exc.value.agent_id == agent and 70 < exc.value.retry_after <= 100
        assert f"agent {agent} is over its quota (0.01/s, burst 2)" in str(exc.value)
        with pytest.raises(RPCError):  # nothing started
            await client.parties(nid)
    # The retry of an accepted notification is the same notification, quota or not.
    again = await client.notify(note(agent, notification_id=first.notification_id))
    assert again.workflow_id == first.workflow_id
    [alert] = await alerts(herald)
    assert agent in alert


async def test_an_event_that_would_fire_is_refused_over_the_quota(herald: Harness) -> None:
    agent = f"client-{uuid.uuid4().hex[:8]}"
    await herald.store.rules.put_rule(
        TriggerRule(name=f"r-{agent}", agent_id=agent, condition="error_rate > 0.5", user_ids=["ada"])
    )
    client = limited(herald, rate=0.01, burst=1)
    rules = RuleCache(herald.store)
    assert (await client.emit(agent, {"error_rate": 0.9}, rules=rules)).fired
    with pytest.raises(QuotaExceeded):
        await client.emit(agent, {"error_rate": 0.9}, rules=rules)
    assert (await client.emit(agent, {"error_rate": 0.1}, rules=rules)).fired == []  # fires nothing: free


async def test_mcp_tools_say_the_key_is_over_its_quota_and_when_to_retry(herald: Harness) -> None:
    agent = f"mcp-{uuid.uuid4().hex[:8]}"
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    key = await issue_token(herald.store, "agent", agent, rate=0.01, burst=1)  # herald keys issue --rate --burst
    keys = AgentKeys(herald.store, "http")
    app = http_app(build_server(HeraldTools(limited(herald, rate=10, burst=100), herald.store, keys, 0.2)), keys)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with http_session(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", key) as session:
            sent = ok(await session.call_tool("notify_user", {"user_id": "ada", "title": "one", "channels": ["email"]}))
            assert sent["notification_id"]
            for tool, args in [
                ("notify_user", {"user_id": "ada", "title": "two"}),
                ("ask_user", {"user_id": "ada", "question": "Deploy?", "actions": [{"id": "y", "label": "Yes"}]}),
            ]:
                message = refused(await session.call_tool(tool, args))
                assert f"agent {agent} is over its quota (0.01/s, burst 1): nothing was started; retry in" in message
                assert key not in message
    finally:
        server.should_exit = True
        await task


async def test_herald_notify_says_the_agent_is_over_its_quota_and_when_to_retry(
    herald: Harness, temporal_env: WorkflowEnvironment, redis: Redis
) -> None:
    agent = f"cli-{uuid.uuid4().hex[:8]}"  # its bucket is herald:quota:agent:<agent>, removed below
    env = clean_env(
        HERALD_HOME=str(herald.settings.store.home),
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=herald.client.task_queue,
        HERALD_REDIS_URL=REDIS_URL,
        HERALD_AGENT_RATE="0.01",
        HERALD_AGENT_BURST="1",
    )
    args = ["notify", "--agent", agent, "--user", "ada", "--title", "Deploy finished", "--channel", ChannelName.email]
    try:
        code, out, err = await run_cli(env, *args)
        assert code == 0, err
        code, out, err = await run_cli(env, *args[:-4], "--title", "Deploy failed")
        assert (code, out) == (1, ""), err
        assert f"error: agent {agent} is over its quota (0.01/s, burst 1): nothing was started; retry in" in err, err
        assert "Traceback" not in err
    finally:
        await redis.delete(f"{DEFAULT_PREFIX}:agent:{agent}")
