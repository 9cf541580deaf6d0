"""Subscriptions on the real Temporal dev server: a subscriber receives its events signed and in order, with ids,
the channel, the status and the time and nothing of the content; one that keeps failing is retried, then disabled
after `subscription_max_failures` events in a row, and says so in the store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from herald.domain.silences import new_silence
from herald.domain.subscriptions import outcome_events, saved
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    HeartbeatSpec,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    SilenceInput,
    SubscriptionEventType,
    SubscriptionInput,
    SubscriptionRun,
    utcnow,
)
from herald.services.subscriptions import EVENT_SIGNAL, subscription_workflow_id
from starter import HeraldClient
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, Harness, make_settings
from tests.fakes.http import FakeHTTPServer, Recorded
from tests.faults.procs import eventually, herald_worker, webhook_worker_env
from worker import create_worker, open_runtime

MAX_FAILURES = 2


@pytest.fixture
async def subscribed(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    """A worker whose subscriptions retry fast (two attempts an event) and disable after two failed events."""
    settings = make_settings(
        tmp_path / "herald",
        retry_initial_seconds=0.1,
        retry_backoff=1.0,
        retry_max_interval_seconds=0.2,
        retry_max_retries=1,
        subscription_max_failures=MAX_FAILURES,
    )
    task_queue = f"subs-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
    ):
        yield Harness(HeraldClient(temporal_env.client, task_queue, FAST_POLICY), runtime, settings)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def until(what: Callable[[], bool], seconds: float = 60.0) -> None:
    """Wait for a condition that the worker makes true (not a timing assertion: the bound only stops a hang)."""
    async with asyncio.timeout(seconds):
        while not what():
            await asyncio.sleep(0.05)


async def subscribe(herald: Harness, name: str, url: str, events: list[SubscriptionEventType], agent: str) -> None:
    body = SubscriptionInput(url=url, events=events, agent_id=agent)
    await herald.store.subscriptions.put_subscription(saved(name, body, "admin", utcnow(), None))


def note(agent: str, user: str, **fields: Any) -> AgentNotification:
    values: dict[str, Any] = {
        "agent_id": agent,
        "user_id": user,
        "title": "Disk 91% on db-1",
        "body": "secret-ish body text",
        "channels": [ChannelName.email],
    }
    values.update(fields)
    return AgentNotification(**values)


def verified(request: Recorded) -> dict[str, Any]:
    headers = {k: v for k, v in request.headers.items() if k.startswith("webhook-")}
    payload: dict[str, Any] = Webhook(WEBHOOK_SECRET).verify(request.body, headers)
    assert headers["webhook-id"] == payload["id"]
    return payload


async def test_a_subscriber_receives_signed_events_in_order(subscribed: Harness, fake_http: FakeHTTPServer) -> None:
    herald = subscribed
    agent, other, user = unique("agent"), unique("other"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    path = f"/subs/{uuid.uuid4().hex[:8]}"
    name = unique("ops")
    wanted = [SubscriptionEventType.delivered, SubscriptionEventType.silenced, SubscriptionEventType.failed]
    await subscribe(herald, name, fake_http.url(path), wanted, agent)

    first = await (await herald.client.notify(note(agent, user))).outcome()
    assert first.status is NotificationStatus.delivered
    now = utcnow()
    silence = new_silence(
        SilenceInput.model_validate(
            {"matchers": {"agent_id": agent, "dedup_key": "held"}, "ends_at": now + timedelta(hours=1), "comment": "m"}
        ),
        "admin",
        now,
    )
    await herald.store.silences.put_silence(silence)
    second = await (await herald.client.notify(note(agent, user, dedup_key="held"))).outcome()
    assert second.status is NotificationStatus.silenced
    # Another agent's notification is not this subscription's.
    await (await herald.client.notify(note(other, user, title="elsewhere"))).outcome()
    third = await (await herald.client.notify(note(agent, user, title="Disk 95%"))).outcome()

    await until(lambda: len(fake_http.received(path)) >= 3)
    payloads = [verified(r) for r in fake_http.received(path)]
    assert [p["type"] for p in payloads] == [
        "notification.delivered",
        "notification.silenced",
        "notification.delivered",
    ]
    assert [p["data"]["notification_id"] for p in payloads] == [
        first.notification_id,
        second.notification_id,
        third.notification_id,
    ]
    assert payloads[0]["id"] == f"{first.notification_id}/notification.delivered"
    assert payloads[0]["data"]["channel"] == "email" and payloads[0]["data"]["status"] == "delivered"
    assert payloads[1]["data"]["silence_id"] == silence.silence_id
    assert all(p["timestamp"] and p["data"]["at"] for p in payloads)
    # Ids, the channel, the status and times only: no title, body or address.
    for request in fake_http.received(path):
        for leaked in (b"Disk", b"secret-ish", b"ada@example.com"):
            assert leaked not in request.body
    kept = await herald.store.subscriptions.get_subscription(name)
    assert kept is not None and kept.enabled and kept.failures == 0


async def test_a_subscriber_that_keeps_failing_is_disabled(subscribed: Harness, fake_http: FakeHTTPServer) -> None:
    herald = subscribed
    agent, user = unique("agent"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    path = f"/subs/{uuid.uuid4().hex[:8]}"
    url = fake_http.script(path, *([500] * 20))
    name = unique("flaky")
    await subscribe(herald, name, url, [SubscriptionEventType.delivered], agent)

    outcomes = [await (await herald.client.notify(note(agent, user, title=f"n{i}"))).outcome() for i in range(3)]

    handle = herald.client.temporal.get_workflow_handle(subscription_workflow_id(name))
    # The run that disabled it ends `disabled`; an event published as it ended may start a run that finds the
    # subscription disabled and ends `gone`, posting nothing.
    assert await handle.result() in ("disabled", "gone")
    kept = await herald.store.subscriptions.get_subscription(name)
    assert kept is not None
    assert not kept.enabled and kept.disabled_at is not None
    assert kept.failures == MAX_FAILURES
    assert kept.last_error is not None and kept.last_error.endswith("webhook endpoint answered 500")
    # Each event was tried twice (one retry), the first event's attempts before the second's; the third never went.
    ids = [r.headers["webhook-id"] for r in fake_http.received(path)]
    expected = [f"{o.notification_id}/notification.delivered" for o in outcomes[:2]]
    assert ids == [expected[0], expected[0], expected[1], expected[1]]
    # Disabled: the next notification's event is not handed to it.
    await (await herald.client.notify(note(agent, user, title="after"))).outcome()
    desc = await handle.describe()
    assert desc.status is not None and desc.status.name == "COMPLETED"
    assert len(fake_http.received(path)) == 4


async def test_a_missed_heartbeat_reaches_its_subscriber(subscribed: Harness, fake_http: FakeHTTPServer) -> None:
    herald = subscribed
    agent, user = unique("backup"), unique("ops")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    path = f"/subs/{uuid.uuid4().hex[:8]}"
    name = unique("hb")
    await subscribe(herald, name, fake_http.url(path), [SubscriptionEventType.heartbeat_missed], agent)
    spec = HeartbeatSpec.model_validate(
        {
            "name": "nightly-backup",
            "agent_id": agent,
            "every_seconds": 1,
            "grace_seconds": 1,
            "notify": {"user_id": user, "channels": ["email"]},
        }
    )
    await herald.client.set_heartbeat(spec)
    try:
        await until(lambda: len(fake_http.received(path)) >= 1)
    finally:
        await herald.client.delete_heartbeat(agent, spec.name)
    payload = verified(fake_http.received(path)[0])
    assert payload["type"] == "heartbeat.missed"
    assert payload["data"]["agent_id"] == agent and payload["data"]["heartbeat"] == "nightly-backup"
    assert payload["data"]["status"] == "missed" and payload["id"].startswith(
        f"heartbeat/{agent}/nightly-backup/missed/"
    )


async def test_events_arrive_in_order_across_a_worker_sigkill(
    temporal_env: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """A `herald worker` process is killed with SIGKILL while its subscriber refuses the first event (retrying):
    the next worker posts it, then the second, in that order; nothing is lost."""
    home = tmp_path / "herald"
    settings = make_settings(home)
    queue = f"subs-kill-{uuid.uuid4().hex[:8]}"
    agent, user = unique("agent"), unique("ada")
    path = f"/subs/{uuid.uuid4().hex[:8]}"
    url = fake_http.script(path, *([503] * 8))
    env = webhook_worker_env(
        home, temporal_env.client.service_client.config.target_host, queue, settings.resolved_database_url
    ) | {
        "HERALD_RETRY_INITIAL_SECONDS": "0.3",
        "HERALD_RETRY_BACKOFF": "1",
        "HERALD_RETRY_MAX_INTERVAL_SECONDS": "0.3",
        "HERALD_RETRY_MAX_RETRIES": "50",
    }
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
    name = unique("durable")
    try:
        async with open_runtime(settings) as runtime:
            await runtime.store.users.put_contact(user, Contact(email="ada@example.com"))
            body = SubscriptionInput(url=url, events=[SubscriptionEventType.delivered], agent_id=agent)
            await runtime.store.subscriptions.put_subscription(saved(name, body, "admin", utcnow(), None))
        await worker.start()
        first = await (await client.notify(note(agent, user, title="one"))).outcome()
        second = await (await client.notify(note(agent, user, title="two"))).outcome()
        await eventually(lambda: len(fake_http.received(path)) >= 1, "the first attempt at the subscriber", 60)
        await worker.kill()
        await worker.start()
        await eventually(lambda: sum(r.status == 200 for r in fake_http.received(path)) >= 2, "both events taken", 120)
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
    ids = [r.headers["webhook-id"] for r in fake_http.received(path)]
    one, two = (f"{o.notification_id}/notification.delivered" for o in (first, second))
    taken = [r.headers["webhook-id"] for r in fake_http.received(path) if r.status == 200]
    assert taken[:2] == [one, two]
    assert ids.index(two) > max(i for i, x in enumerate(ids) if x == one), "the second waited for the first"


async def test_a_run_continues_as_new_carrying_what_is_pending(subscribed: Harness, fake_http: FakeHTTPServer) -> None:
    """A run of one event a run: the events signalled while the first is sent go on in the next run, in order, and
    a repeated event (a retried record_outcome) is posted once."""
    herald = subscribed
    agent = unique("agent")
    path = f"/subs/{uuid.uuid4().hex[:8]}"
    name = unique("rotating")
    await subscribe(herald, name, fake_http.url(path), [SubscriptionEventType.failed], agent)
    events = [
        outcome_events(
            NotificationOutcome(
                notification_id=f"n{i}-{uuid.uuid4().hex[:6]}",
                workflow_id="notification/x",
                agent_id=agent,
                user_id="ada",
                priority=Priority.medium,
                status=NotificationStatus.failed,
            ),
            utcnow(),
        )[0]
        for i in range(3)
    ]
    run = SubscriptionRun(name=name, retry=FAST_POLICY.retry, events_per_run=1)
    temporal = herald.client.temporal
    first = None
    for event in [events[0], events[1], events[0], events[2]]:
        handle = await temporal.start_workflow(
            "SubscriptionWorkflow",
            run,
            id=subscription_workflow_id(name),
            task_queue=herald.client.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal=EVENT_SIGNAL,
            start_signal_args=[event],
        )
        first = first or handle.result_run_id
    await until(lambda: len(fake_http.received(path)) >= 3)
    ids = [r.headers["webhook-id"] for r in fake_http.received(path)]
    assert ids[:3] == [e.id for e in events]
    latest = await temporal.get_workflow_handle(subscription_workflow_id(name)).describe()
    assert latest.run_id != first, "it continued as new"
    await temporal.get_workflow_handle(subscription_workflow_id(name)).terminate("test over")
    assert len(set(ids)) == len(ids) == 3


async def test_a_delivered_notification_resolved_later_is_delivered_then_resolved(
    subscribed: Harness, fake_http: FakeHTTPServer
) -> None:
    """Resolved after its workflow ended: the ResolveEndedWorkflow records it `resolved`, whose outcome makes the
    delivered event again (the same id, dropped by the subscription's run) and the resolved one."""
    from herald.domain import resolve

    herald = subscribed
    agent, user = unique("agent"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    path = f"/subs/{uuid.uuid4().hex[:8]}"
    kinds = [SubscriptionEventType.delivered, SubscriptionEventType.resolved]
    await subscribe(herald, unique("resolving"), fake_http.url(path), kinds, agent)
    sent = await (await herald.client.notify(note(agent, user, dedup_key="disk/db-1"))).outcome()
    assert sent.status is NotificationStatus.delivered

    async def listed() -> bool:
        return (await herald.client.temporal.count_workflows(resolve.ended_query(agent, "disk/db-1"))).count == 1

    await eventually(listed, "the completed notification in Temporal's visibility")
    assert (await herald.client.resolve(agent, "disk/db-1")).resolved == [sent.notification_id]
    await until(lambda: len(fake_http.received(path)) >= 2)
    payloads = [verified(r) for r in fake_http.received(path)]
    assert [p["type"] for p in payloads] == ["notification.delivered", "notification.resolved"]
    assert payloads[1]["id"] == f"{sent.notification_id}/notification.resolved"
    assert payloads[1]["data"]["status"] == "resolved"
