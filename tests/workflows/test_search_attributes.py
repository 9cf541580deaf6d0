"""What ops see in the Temporal UI: search attributes to find notifications, summaries and current details.

List visibility is eventually consistent, so a query is polled until it returns what is expected (the
assertion then compares what it last returned).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.converter import PayloadCodec
from temporalio.testing import WorkflowEnvironment

from herald.domain import search
from herald.domain.events import plan_firings
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    EventRequest,
    Firing,
    NotificationStatus,
    Preferences,
    Priority,
    utcnow,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness
from worker import create_worker
from workflows.digest import DigestWorkflow

EMAIL, PUSH, SMS = ChannelName.email, ChannelName.push, ChannelName.sms


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def found(client: Client, query: str, expected: set[str], attempts: int = 50) -> set[str]:
    """The workflow ids the query returns, once they are `expected` (or the last answer, to fail on)."""
    ids: set[str] = set()
    for _ in range(attempts):
        ids = {execution.id async for execution in client.list_workflows(query)}
        if ids == expected:
            break
        await asyncio.sleep(0.1)
    return ids


async def details(handle: WorkflowHandle[Any, Any]) -> str:
    """The current details, read the way the UI reads them (the SDK's built-in metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)


async def test_finished_notifications_are_found_by_user_status_agent_priority_and_channel(herald: Harness) -> None:
    agent_id, ada, bob = unique("agent"), unique("ada"), unique("bob")
    await herald.store.users.put_contact(ada, Contact(email="ada@example.com"))
    await herald.store.users.put_contact(bob, Contact(email="bob@example.com"))

    def note(user: str, **fields: Any) -> AgentNotification:
        return AgentNotification(**{"agent_id": agent_id, "user_id": user, "title": "Error rate 7%", **fields})

    sent = {
        "unconfirmed": note(ada, priority="critical", channels=[EMAIL]),  # one channel confirms, not two
        "fallback": note(ada, title="Latency up", channels=[PUSH]),  # nobody connected: push falls back to email
        "no_channel": note(bob, priority="low", channels=[SMS]),
        "delivered": note(bob, title="Latency up", priority="high", channels=[EMAIL]),
    }
    handles = {name: await herald.client.notify(n) for name, n in sent.items()}
    outcomes = {name: await h.outcome() for name, h in handles.items()}
    ids = {name: h.workflow_id for name, h in handles.items()}
    assert {name: o.status.value for name, o in outcomes.items()} == {
        "unconfirmed": "unconfirmed",
        "fallback": "delivered",
        "no_channel": "no_channel",
        "delivered": "delivered",
    }
    temporal = herald.client.temporal

    query = f"HeraldUserId='{ada}' AND HeraldStatus='unconfirmed'"
    assert await found(temporal, query, {ids["unconfirmed"]}) == {ids["unconfirmed"]}
    query = f"HeraldUserId='{bob}' AND HeraldStatus='delivered'"
    assert await found(temporal, query, {ids["delivered"]}) == {ids["delivered"]}
    query = f"HeraldAgentId='{agent_id}'"
    assert await found(temporal, query, set(ids.values())) == set(ids.values())
    query = f"HeraldAgentId='{agent_id}' AND HeraldPriority='low'"
    assert await found(temporal, query, {ids["no_channel"]}) == {ids["no_channel"]}
    # Channels used so far, fallbacks and escalations included; a notification that used none has none.
    used = {c: {ids[name] for name, o in outcomes.items() if c in o.channels} for c in ChannelName}
    assert ids["fallback"] in used[PUSH] & used[EMAIL]
    assert ids["no_channel"] not in set().union(*used.values())
    for channel, expected in used.items():
        query = f"HeraldAgentId='{agent_id}' AND HeraldChannels='{channel.value}'"
        assert await found(temporal, query, expected) == expected, channel

    description = await temporal.get_workflow_handle(ids["fallback"]).describe()
    assert description.typed_search_attributes.get(search.CHANNELS) == ["push", "email"]
    assert description.typed_search_attributes.get(search.STATUS) == "delivered"
    assert await description.static_summary() == f"medium: Latency up on {agent_id} -> {ada}"
    assert await details(temporal.get_workflow_handle(ids["fallback"])) == (
        "**delivered**\n- push: failed RecipientNotConnected (1 attempt) -> email\n- email: delivered (1 attempt)"
    )


async def test_running_notification_is_pending_and_shows_each_channel(patient_push: Harness) -> None:
    herald, user = patient_push, unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    with herald.runtime.hub.connect(user) as connection:
        handle = await herald.client.notify(
            AgentNotification(agent_id="support-agent", user_id=user, title="Disk full", channels=[EMAIL, PUSH])
        )
        frame = await connection.receive()  # push is out, waiting for the ack this test holds back
        workflow = herald.client.temporal.get_workflow_handle(handle.workflow_id)
        running = ""
        for _ in range(300):  # the first attempts are local: their state shows at the task's heartbeat
            running = await details(workflow)
            if "email: delivered" in running:
                break
            await asyncio.sleep(0.05)
        assert running == "**pending**\n- email: delivered (1 attempt)\n- push: sending"
        query = f"HeraldUserId='{user}' AND HeraldStatus='pending'"
        assert await found(herald.client.temporal, query, {handle.workflow_id}) == {handle.workflow_id}
        description = await workflow.describe()
        assert await description.static_summary() == f"medium: Disk full on support-agent -> {user}"
        assert description.typed_search_attributes.get(search.PRIORITY) == "medium"
        assert description.typed_search_attributes.get(search.CHANNELS) == ["push", "email"]

        connection.ack(frame["notification_id"])
        assert (await handle.outcome()).status is NotificationStatus.delivered
    assert await details(workflow) == "**delivered**\n- email: delivered (1 attempt)\n- push: delivered (1 attempt)"
    query = f"HeraldUserId='{user}' AND HeraldStatus='delivered' AND HeraldChannels='push'"
    assert await found(herald.client.temporal, query, {handle.workflow_id}) == {handle.workflow_id}


async def test_quiet_hours_show_as_held_in_the_details(herald: Harness) -> None:
    user = unique("night-owl")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    now = datetime.now(UTC)  # a window around now, so the test does not depend on the time of day
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    await herald.store.users.put_preferences(user, Preferences.model_validate({"quiet_hours": {"window": window}}))
    handle = await herald.client.notify(AgentNotification(agent_id="a", user_id=user, title="Later", channels=[EMAIL]))
    workflow = herald.client.temporal.get_workflow_handle(handle.workflow_id)
    try:
        held = ""
        for _ in range(50):
            held = await details(workflow)
            if "held" in held:
                break
            await asyncio.sleep(0.05)
        outcome = await handle.status()
        assert outcome.held_until is not None
        assert held == f"**pending**\nheld for quiet hours until {outcome.held_until.isoformat(timespec='minutes')}"
        query = f"HeraldUserId='{user}' AND HeraldStatus='pending'"
        assert await found(herald.client.temporal, query, {handle.workflow_id}) == {handle.workflow_id}
    finally:
        await workflow.terminate("test over")


async def test_monitor_and_digest_workflows_are_found_by_agent_and_user(herald: Harness) -> None:
    agent_id, user = unique("agent"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    temporal = herald.client.temporal

    event_id = uuid.uuid4().hex
    firing = Firing(
        rule="errors",
        cooldown_seconds=600,
        user_ids=[user],
        channels=[EMAIL],
        priority=Priority.high,
        title="error rate 7%",
    )
    result = await herald.client.send_event(
        EventRequest(
            agent_id=agent_id,
            event_id=event_id,
            plans=plan_firings(agent_id, event_id, [firing], utcnow()),
            policy=FAST_POLICY,
        )
    )
    [notification_id] = result.fired[0].notification_ids
    child = temporal.get_workflow_handle(f"notification/{notification_id}")

    await herald.store.users.put_preferences(user, Preferences.model_validate({"digest": {"cadence": "hourly"}}))
    digested = await herald.client.notify(
        AgentNotification(agent_id=agent_id, user_id=user, title="fyi", priority="low", channels=[EMAIL])
    )
    assert (await digested.outcome()).status is NotificationStatus.digested
    digest = temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}")
    try:
        monitors = f"HeraldAgentId='{agent_id}' AND WorkflowType='MonitorWorkflow'"
        assert await found(temporal, monitors, {f"monitor/{agent_id}"}) == {f"monitor/{agent_id}"}
        digests = f"HeraldUserId='{user}' AND WorkflowType='DigestWorkflow'"
        assert await found(temporal, digests, {f"digest/{user}"}) == {f"digest/{user}"}

        # Children started by the monitor carry the same attributes and summary as the client's starts.
        await child.result()
        description = await child.describe()
        assert description.typed_search_attributes.get(search.AGENT_ID) == agent_id
        assert description.typed_search_attributes.get(search.PRIORITY) == "high"
        assert await description.static_summary() == f"high: error rate 7% on {agent_id} -> {user}"

        # The digest's own notification too (it is found by the user's id, and summarised).
        digest_id = (await digest.execute_update(DigestWorkflow.flush)).digest_id
        assert digest_id is not None
        carrier = temporal.get_workflow_handle(f"notification/{digest_id}")
        await carrier.result()
        query = f"HeraldUserId='{user}' AND HeraldAgentId='herald-digest' AND HeraldStatus='delivered'"
        assert await found(temporal, query, {carrier.id}) == {carrier.id}
        summary = await (await carrier.describe()).static_summary()
        assert summary is not None and summary.startswith("medium: ") and summary.endswith(f" -> {user}")
    finally:
        await temporal.get_workflow_handle(f"monitor/{agent_id}").terminate("test over")
        await digest.terminate("test over")


class ReversingCodec(PayloadCodec):
    """Stands in for an encrypting codec: what it encodes can't be read in the history as plain text."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": b"binary/reversed"}, data=p.SerializeToString()[::-1]) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload.FromString(p.data[::-1]) for p in payloads]


async def test_summaries_go_through_the_payload_codec_and_search_attributes_do_not(
    herald: Harness, temporal_env: WorkflowEnvironment
) -> None:
    """The title is in the summary: with a codec configured it is encoded like the notification itself."""
    config = temporal_env.client.config()
    config["data_converter"] = dataclasses.replace(config["data_converter"], payload_codec=ReversingCodec())
    client = Client(**config)
    queue = unique("codec")
    user = unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    async with create_worker(client, herald.runtime, queue, workflow_failure_exception_types=[Exception]):
        handle = await HeraldClient(client, queue, FAST_POLICY).notify(
            AgentNotification(agent_id="support-agent", user_id=user, title="Secret project X", channels=[EMAIL])
        )
        assert (await handle.outcome()).status is NotificationStatus.delivered
        workflow = client.get_workflow_handle(handle.workflow_id)
        assert (
            await (await workflow.describe()).static_summary() == f"medium: Secret project X on support-agent -> {user}"
        )
        assert "- email: delivered (1 attempt)" in await details(workflow)
    history = await workflow.fetch_history()
    assert b"Secret project X" not in b"".join(event.SerializeToString() for event in history.events)
    started = history.events[0]
    assert started.user_metadata.summary.metadata["encoding"] == b"binary/reversed"
    assert (await workflow.describe()).typed_search_attributes.get(search.USER_ID) == user  # indexed in plain text
