"""Subscriptions through the CLI (in-process, on HERALD_HOME's store), the MCP tools (the SDK's client over
streamable HTTP, in this process) and HeraldClient, the client's ending with a signed event from the real worker."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from herald.adapters.netguard import UnsafeURL
from herald.models import AgentNotification, ChannelName, Contact, SubscriptionEventType
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, Harness
from tests.fakes.http import FakeHTTPServer
from tests.starter.test_mcp import http_server, http_session, name, ok, refused
from tests.starter.test_silences_tools import cli
from tests.workflows.test_subscriptions import until

# A public address, named by its number: the SSRF guard passes it without a DNS lookup (nothing is sent to it here).
PUBLIC = "https://93.184.215.14/hook"


def test_cli_sets_lists_and_deletes_subscriptions(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out, err = cli(
        home,
        "subscriptions",
        "set",
        "ops",
        "--url",
        PUBLIC,
        "--event",
        "notification.failed",
        "--event",
        "heartbeat.missed",
    )
    assert code == 0, err
    assert out == "subscription ops: notification.failed, heartbeat.missed\n"
    code, out, err = cli(home, "subscriptions", "list")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATE", "FAILURES", "AGENT", "EVENTS", "LAST", "ERROR"]
    assert row.split() == ["ops", "enabled", "0", "*", "notification.failed,heartbeat.missed"]
    code, out, _ = cli(home, "subscriptions", "list", "--json")
    [listed] = json.loads(out)["subscriptions"]
    assert listed["owner"] == "cli" and listed["url"] == PUBLIC and listed["state"] == "enabled"

    assert cli(home, "subscriptions", "delete", "ops")[1] == "deleted subscription ops\n"
    assert cli(home, "subscriptions", "list")[1] == "no subscriptions\n"
    assert cli(home, "subscriptions", "delete", "ops")[0:3:2] == (1, "error: no subscription ops\n")


def test_cli_refuses_bad_subscriptions_naming_the_field(tmp_path: Path) -> None:
    home = tmp_path / "home"
    refusals = {
        (
            "ops",
            "--url",
            "http://127.0.0.1:9/x",
            "--event",
            "notification.failed",
        ): "error: --url resolves to a loopback",
        ("ops", "--url", "ftp://x.example/", "--event", "notification.failed"): "error: url: ",
        ("ops", "--url", PUBLIC, "--event", "notification.created"): "error: events.0: ",
        ("no spaces", "--url", PUBLIC, "--event", "notification.failed"): "error: NAME: ",
    }
    for args, message in refusals.items():
        code, _, err = cli(home, "subscriptions", "set", *args)
        assert code == 2 and err.startswith(message), (args, err)
    assert cli(home, "subscriptions", "list")[1] == "no subscriptions\n"


async def test_mcp_tools_subscribe_the_keys_own_agent(herald: Harness) -> None:
    agent, other = name("agent"), name("other")
    key = await issue_token(herald.store, "agent", agent)
    other_key = await issue_token(herald.store, "agent", other)
    async with http_server(herald) as url:
        async with http_session(url, key) as session:
            made = ok(
                await session.call_tool(
                    "set_subscription", {"name": f"{agent}-hook", "url": PUBLIC, "events": ["notification.failed"]}
                )
            )
            assert made["agent_id"] == agent and made["owner"] == f"agent:{agent}" and made["state"] == "enabled"
            assert "url resolves to a loopback" in refused(
                await session.call_tool(
                    "set_subscription",
                    {"name": "inward", "url": "http://127.0.0.1:9/", "events": ["notification.failed"]},
                )
            )
            assert "events" in refused(
                await session.call_tool("set_subscription", {"name": "x", "url": PUBLIC, "events": []})
            )
            listed = ok(await session.call_tool("list_subscriptions", {}))["subscriptions"]
            assert [s["name"] for s in listed] == [f"{agent}-hook"]
        async with http_session(url, other_key) as session:
            assert ok(await session.call_tool("list_subscriptions", {}))["subscriptions"] == []
            assert "is not this agent's" in refused(
                await session.call_tool(
                    "set_subscription", {"name": f"{agent}-hook", "url": PUBLIC, "events": ["notification.failed"]}
                )
            )
            assert f"agent {other} has no subscription" in refused(
                await session.call_tool("delete_subscription", {"name": f"{agent}-hook"})
            )
        async with http_session(url, key) as session:
            await session.call_tool("delete_subscription", {"name": f"{agent}-hook"})
            assert ok(await session.call_tool("list_subscriptions", {}))["subscriptions"] == []


async def test_the_client_subscribes_and_receives_a_signed_event(herald: Harness, fake_http: FakeHTTPServer) -> None:
    agent, user = name("agent"), name("user")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    store = herald.store
    with pytest.raises(UnsafeURL, match="loopback"):
        await herald.client.set_subscription(
            "inward", {"url": "http://127.0.0.1:9/", "events": ["notification.delivered"]}, store=store
        )
    # A client beside `herald dev` (HERALD_ALLOW_PRIVATE_WEBHOOKS) posts to this machine.
    client = HeraldClient(herald.client.temporal, herald.client.task_queue, FAST_POLICY, allow_private_urls=True)
    path = f"/client-sub/{uuid.uuid4().hex[:8]}"
    sub_name = name("client-sub")
    made = await client.set_subscription(
        sub_name,
        {"url": fake_http.url(path), "events": [SubscriptionEventType.delivered], "agent_id": agent},
        store=store,
    )
    assert made.owner == "client" and made.enabled
    assert [s.name for s in await client.subscriptions(agent_id=agent, store=store)] == [sub_name]

    sent = await (
        await client.notify(AgentNotification(agent_id=agent, user_id=user, title="hi", channels=[ChannelName.email]))
    ).outcome()
    await until(lambda: len(fake_http.received(path)) >= 1)
    [request] = fake_http.received(path)
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    payload = Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert payload["type"] == "notification.delivered" and payload["data"]["notification_id"] == sent.notification_id

    assert await client.delete_subscription(sub_name, store=store)
    assert not await client.delete_subscription(sub_name, store=store)
    assert await client.subscriptions(agent_id=agent, store=store) == []
