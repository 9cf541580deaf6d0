"""Resolving on the real dev server: a resolve stops what is still pending (a retry's backoff, the critical
escalation, a question's answer wait), ends the run `resolved` and tells the live inbox."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import WorkflowHandle

from herald.domain import resolve
from herald.models import (
    Action,
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryPolicy,
    NotificationStatus,
    Preferences,
    Priority,
    RetrySettings,
)
from starter import AnswerRefused, HeraldClient
from tests.conftest import FAST_POLICY, Harness, acking
from tests.fakes.http import FakeHTTPServer

AGENT = "disk-agent"
KEY = "disk-full/db-1"
# A retry an hour away: the backoff is still pending when the test resolves.
SLOW_RETRY = FAST_POLICY.model_copy(
    update={"retry": RetrySettings(initial_interval_seconds=3600, maximum_interval_seconds=3600)}
)


def slow_client(herald: Harness, policy: DeliveryPolicy = SLOW_RETRY) -> HeraldClient:
    return HeraldClient(herald.client.temporal, herald.client.task_queue, policy)


def alert(**fields: Any) -> AgentNotification:
    values: dict[str, Any] = {"agent_id": AGENT, "user_id": "user-1", "title": "Disk 95% on db-1", "dedup_key": KEY}
    values.update(fields)
    return AgentNotification(**values)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll `check()` until it returns something truthy (a bounded wait for an event, not a timing assertion)."""
    for _ in range(800):
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.025)
    raise AssertionError(f"gave up waiting for {what}")


def history_has(handle: WorkflowHandle[Any, Any], field: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async for event in handle.fetch_history_events():
            if event.HasField(field):
                return True
        return False

    return check


async def found_open(herald: Harness, count: int) -> bool:
    """Temporal's visibility lists the open notifications (it trails a start by a moment)."""
    listed = await herald.client.temporal.count_workflows(resolve.open_query(AGENT, KEY))
    return listed.count == count


async def push_and_webhook_only(herald: Harness, webhook_url: str) -> None:
    await herald.store.users.put_contact("user-1", Contact(webhook_url=webhook_url))
    await herald.store.users.put_preferences(
        "user-1",
        Preferences.model_validate({"default": {"push": True, "webhook": True, "email": False, "sms": False}}),
    )


async def test_a_resolve_stops_a_pending_retry(herald: Harness, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script("/resolve-retry", 503, 200)
    await push_and_webhook_only(herald, url)
    handle = await slow_client(herald).notify(alert(channels=[ChannelName.webhook]))
    workflow = herald.client.temporal.get_workflow_handle(handle.workflow_id)
    await eventually(history_has(workflow, "timer_started_event_attributes"), "the retry's backoff timer")
    await eventually(lambda: found_open(herald, 1), "the notification in Temporal's visibility")

    result = await herald.client.resolve(AGENT, KEY)
    outcome = await handle.outcome()

    assert result.resolved == [handle.notification_id]
    assert outcome.status is NotificationStatus.resolved
    assert outcome.resolved is not None and outcome.resolved.by == f"agent:{AGENT}"
    assert outcome.channels[ChannelName.webhook].status is ChannelStatus.stopped
    assert len(fake_http.received("/resolve-retry")) == 1, "the retry never went out"
    assert await history_has(workflow, "timer_canceled_event_attributes")()
    recorded = await herald.store.notifications.get_outcome(handle.notification_id)
    assert recorded is not None and recorded.status is NotificationStatus.resolved

    again = await herald.client.resolve(AGENT, KEY)
    assert again.resolved == []
    assert again.message.startswith("nothing to resolve")


async def test_a_resolve_stops_the_critical_escalation_and_marks_the_inbox(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """Push confirms one channel of the two a critical alert needs; the escalation's webhook is retrying when the
    resolve comes: it stops, no ops alert is raised, and the live inbox gets the `resolved` frame."""
    url = fake_http.script("/resolve-escalation", 503, 200)
    await push_and_webhook_only(herald, url)
    frames: list[dict[str, Any]] = []
    with herald.runtime.hub.connect("user-1") as connection:
        acker = asyncio.create_task(acking(connection, frames))
        try:
            handle = await slow_client(herald).notify(alert(priority=Priority.critical, channels=[ChannelName.push]))
            workflow = herald.client.temporal.get_workflow_handle(handle.workflow_id)
            await eventually(history_has(workflow, "timer_started_event_attributes"), "the escalation's retry timer")
            await eventually(lambda: found_open(herald, 1), "the notification in Temporal's visibility")

            result = await herald.client.resolve(AGENT, KEY)
            outcome = await handle.outcome()
            await eventually(lambda: any(f["type"] == "resolved" for f in frames), "the resolved frame")
        finally:
            acker.cancel()

    assert result.resolved == [handle.notification_id]
    assert outcome.status is NotificationStatus.resolved
    assert outcome.channels[ChannelName.push].status is ChannelStatus.delivered
    escalation = outcome.channels[ChannelName.webhook]
    assert escalation.escalation and escalation.status is ChannelStatus.stopped
    assert outcome.ops_alert is None, "a resolved alert needs nobody to confirm it"
    assert len(fake_http.received("/resolve-escalation")) == 1
    assert [f for f in frames if f["type"] == "resolved"] == [
        {"type": "resolved", "notification_id": handle.notification_id}
    ]


async def test_a_resolved_question_stops_waiting_and_takes_no_answer(herald: Harness) -> None:
    await herald.store.users.put_preferences(
        "user-1", Preferences.model_validate({"default": {"push": True, "email": False, "sms": False}})
    )
    with herald.runtime.hub.connect("user-1") as connection:
        acker = asyncio.create_task(acking(connection))
        try:
            question = alert(actions=[Action(id="restart", label="Restart db-1")])
            handle = await herald.client.notify(question)
            await eventually(lambda: found_open(herald, 1), "the question in Temporal's visibility")
            await eventually(lambda: _delivered_push(herald, handle.notification_id), "the question delivered, waiting")
            result = await herald.client.resolve(AGENT, KEY, by="admin")
            outcome = await handle.outcome()
        finally:
            acker.cancel()

    assert result.resolved == [handle.notification_id]
    assert outcome.status is NotificationStatus.resolved and outcome.answer is None
    assert outcome.resolved is not None and outcome.resolved.by == "admin"
    try:
        await herald.client.respond(handle.notification_id, "restart", "user-1")
    except AnswerRefused as refusal:
        assert refusal.code == "closed"
    else:
        raise AssertionError("a resolved question took an answer")


async def _delivered_push(herald: Harness, notification_id: str) -> bool:
    status = await herald.client.status(notification_id)
    push = status.channels.get(ChannelName.push)
    return push is not None and push.status is ChannelStatus.delivered and status.status is NotificationStatus.pending


async def test_resolving_another_agents_key_or_an_unknown_key_resolves_nothing(herald: Harness) -> None:
    result = await herald.client.resolve("other-agent", KEY)
    assert result.resolved == [] and "other-agent" in result.message
