"""Escalation policies on the real dev server: a three-step policy whose step 1 nobody acks and whose step 2 (a
schedule: whoever is on call then) acks, across a `herald worker` SIGKILLed between the steps; step 3 is never
notified (a group), step 1's person is told who took it, and the outcome lists each step, who was notified and who acked.

People are reached by webhook (a loopback receiver), counted by idempotency key (`webhook-id`).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.domain.oncall import child_notification_id
from herald.models import (
    Action,
    AgentNotification,
    Contact,
    Group,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    notification_workflow_id,
    utcnow,
)
from herald.models.oncall import EscalationPolicy, Schedule
from starter import AnswerRefused, HeraldClient
from tests.conftest import FAST_POLICY, Harness, make_settings
from tests.fakes.http import FakeHTTPServer
from tests.faults.procs import eventually, herald_worker, webhook_worker_env
from worker import open_runtime


async def webhook_user(store: Store, user: str, url: str) -> None:
    await store.users.put_contact(user, Contact(webhook_url=url))
    await store.users.put_preferences(user, Preferences.model_validate({"default": {"push": False, "email": False}}))


def sent(fake: FakeHTTPServer, path: str) -> int:
    return len({r.headers["webhook-id"] for r in fake.received(path)})


async def timers_fired(handle: WorkflowHandle[Any, Any]) -> int:
    count = 0
    async for event in handle.fetch_history_events():
        count += event.HasField("timer_fired_event_attributes")
    return count


async def test_step_two_acks_across_a_worker_sigkill_and_step_three_is_never_notified(
    temporal_env: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    home = tmp_path / "herald"
    settings = make_settings(home)
    queue = f"escalation-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    ada, bob, cy = f"ada-{tag}", f"bob-{tag}", f"cy-{tag}"
    paths = {u: f"/escalation/{u}" for u in (ada, bob, cy)}
    env = webhook_worker_env(
        home, temporal_env.client.service_client.config.target_host, queue, settings.resolved_database_url
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
    now = utcnow()
    async with open_runtime(settings) as runtime:
        for user, path in paths.items():
            await webhook_user(runtime.store, user, fake_http.script(path))
        await runtime.store.oncall.put_schedule(
            Schedule(
                name=f"primary-{tag}",
                updated_at=now,
                time_zone="Europe/Berlin",
                rotation={"members": [bob], "shift_hours": 24, "starts_at": now - timedelta(days=3)},
            )
        )
        await runtime.store.groups.put(Group(name=f"dba-{tag}", members=[cy], created_at=now, updated_at=now))
        await runtime.store.oncall.put_policy(
            EscalationPolicy(
                name=f"db-{tag}",
                updated_at=now,
                steps=[
                    # Long enough that the worker is killed (once ada's webhook arrives) well before it ends, on a
                    # busy machine too.
                    {"targets": [f"user:{ada}"], "ack_within_seconds": 8},
                    {"targets": [f"schedule:primary-{tag}"], "ack_within_seconds": 120},
                    {"targets": [f"group:dba-{tag}"], "ack_within_seconds": 3},
                ],
            )
        )
    notification = AgentNotification(
        agent_id="db-agent",
        user_id=ada,
        title="Primary database is down",
        priority="high",
        channels=["webhook"],
        escalation_policy=f"db-{tag}",
    )
    parent_id = notification.notification_id
    ada_child = child_notification_id(parent_id, 0, 0, ada)
    bob_child = child_notification_id(parent_id, 0, 1, bob)
    try:
        await worker.start()
        handle = await client.notify(notification)
        parent = temporal_env.client.get_workflow_handle(notification_workflow_id(parent_id))
        await eventually(lambda: sent(fake_http, paths[ada]) == 1, "step 1: ada notified", 120)
        await worker.kill()
        # Step 1's wait ends with no worker running: nobody has seen it yet, so nobody is notified.
        await eventually(lambda: timers_fired(parent), "step 1's timer, with no worker running", 30)
        assert sent(fake_http, paths[bob]) == 0
        await worker.start()
        await eventually(lambda: sent(fake_http, paths[bob]) == 1, "step 2: bob (on call) notified", 120)
        await client.respond(bob_child, "ack", bob, "slack")
        outcome = await asyncio.wait_for(handle.outcome(), 120)
        told = await asyncio.wait_for(
            temporal_env.client.get_workflow_handle(
                notification_workflow_id(ada_child), result_type=NotificationOutcome
            ).result(),
            120,
        )
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()

    assert outcome.status is NotificationStatus.confirmed
    escalation = outcome.escalation
    assert escalation is not None and escalation.policy == f"db-{tag}"
    assert [(s.step, s.notified, s.notifications) for s in escalation.steps] == [
        (0, [ada], [ada_child]),
        (1, [bob], [bob_child]),
    ]
    assert escalation.steps[1].at - escalation.steps[0].at >= timedelta(seconds=8)
    assert escalation.acked is not None
    assert (escalation.acked.by, escalation.acked.channel, escalation.acked.step) == (bob, "slack", 1)
    assert outcome.acknowledged is not None and outcome.acknowledged.user_id == bob
    # Step 1's person was told who took it; step 3's was never notified; nobody was notified twice.
    assert told.taken_by is not None and (told.taken_by.user_id, told.taken_by.channel.value) == (bob, "slack")
    assert sent(fake_http, paths[ada]) == 1 and sent(fake_http, paths[bob]) == 1 and sent(fake_http, paths[cy]) == 0


async def test_nobody_acking_runs_the_policy_again_then_ends_unconfirmed_with_an_ops_alert(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """`repeat: 1`: the one step runs twice, asking ada again (a second notification of her own); nobody acks, so it
    ends `unconfirmed` and alerts ops; each run of the step is in the outcome."""
    tag = uuid.uuid4().hex[:6]
    ada = f"ada-{tag}"
    await webhook_user(herald.store, ada, fake_http.script(f"/again/{ada}"))
    await herald.store.oncall.put_policy(
        EscalationPolicy(
            name=f"p-{tag}",
            updated_at=utcnow(),
            steps=[{"targets": [f"user:{ada}"], "ack_within_seconds": 1}],
            repeat=1,
        )
    )
    handle = await herald.client.notify(
        AgentNotification(
            agent_id="db-agent", user_id=ada, title="Disk full", channels=["webhook"], escalation_policy=f"p-{tag}"
        )
    )
    outcome = await asyncio.wait_for(handle.outcome(), 120)
    assert outcome.status is NotificationStatus.unconfirmed and outcome.ops_alert is not None
    assert outcome.escalation is not None and outcome.escalation.acked is None
    assert [(s.round, s.step, s.notified) for s in outcome.escalation.steps] == [(0, 0, [ada]), (1, 0, [ada])]
    # Recorded whole, and shown by GET /v1/notifications/{id} and `herald status` (herald.api.views).
    from herald.api.views import load_notification

    view = await load_notification(herald.store, herald.client, outcome.notification_id)
    assert view is not None and view.escalation == outcome.escalation and view.status is NotificationStatus.unconfirmed
    await eventually(lambda: sent(fake_http, f"/again/{ada}") == 2, "ada asked once a round", 60)


async def test_an_answer_on_a_step_answers_the_escalated_question_and_an_unknown_policy_reaches_nobody(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    tag = uuid.uuid4().hex[:6]
    ada = f"ada-{tag}"
    await webhook_user(herald.store, ada, fake_http.script(f"/answer/{ada}"))
    await herald.store.oncall.put_policy(
        EscalationPolicy(
            name=f"p-{tag}", updated_at=utcnow(), steps=[{"targets": [f"user:{ada}"], "ack_within_seconds": 60}]
        )
    )
    question = AgentNotification(
        agent_id="db-agent",
        user_id=ada,
        title="Fail over?",
        channels=["webhook"],
        actions=[Action(id="failover", label="Fail over")],
        escalation_policy=f"p-{tag}",
    )
    handle = await herald.client.notify(question)
    await eventually(lambda: sent(fake_http, f"/answer/{ada}") == 1, "ada asked", 60)
    with pytest.raises(AnswerRefused, match="escalates"):  # the escalation itself takes no answer: its steps do
        await herald.client.respond(question.notification_id, "failover", ada)
    await herald.client.respond(child_notification_id(question.notification_id, 0, 0, ada), "failover", ada)
    outcome = await asyncio.wait_for(handle.outcome(), 60)
    assert outcome.status is NotificationStatus.answered
    assert outcome.answer is not None and outcome.answer.action_id == "failover" and outcome.answer.user_id == ada
    assert outcome.escalation is not None and outcome.escalation.acked is not None
    assert outcome.escalation.acked.by == ada

    nowhere = await herald.client.notify(
        question.model_copy(update={"notification_id": f"n-{tag}", "title": "Elsewhere", "escalation_policy": "nope"})
    )
    gone = await asyncio.wait_for(nowhere.outcome(), 60)
    assert gone.status is NotificationStatus.no_channel
    assert gone.escalation is not None and gone.escalation.error == "no escalation policy nope"


async def test_resolving_an_escalation_stops_its_steps_and_resolves_its_peoples_notifications(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """Its agent resolves the escalating notification while step 1 waits: it ends `resolved`, step 2 is never
    notified, and step 1's person's notification is resolved too."""
    tag = uuid.uuid4().hex[:6]
    ada, bob = f"ada-{tag}", f"bob-{tag}"
    for user in (ada, bob):
        await webhook_user(herald.store, user, fake_http.script(f"/resolve/{user}"))
    await herald.store.oncall.put_policy(
        EscalationPolicy(
            name=f"p-{tag}",
            updated_at=utcnow(),
            steps=[
                {"targets": [f"user:{ada}"], "ack_within_seconds": 60},
                {"targets": [f"user:{bob}"], "ack_within_seconds": 60},
            ],
        )
    )
    n = AgentNotification(
        agent_id=f"db-{tag}",
        user_id=ada,
        title="Disk full",
        channels=["webhook"],
        dedup_key="disk-full",
        escalation_policy=f"p-{tag}",
    )
    handle = await herald.client.notify(n)
    await eventually(lambda: sent(fake_http, f"/resolve/{ada}") == 1, "step 1: ada notified", 60)

    async def resolved() -> bool:
        return bool((await herald.client.resolve(n.agent_id, "disk-full")).resolved)

    await eventually(resolved, "the escalation found and resolved", 60, 0.5)
    outcome = await asyncio.wait_for(handle.outcome(), 60)
    assert outcome.status is NotificationStatus.resolved
    assert outcome.escalation is not None and [s.step for s in outcome.escalation.steps] == [0]
    child = await asyncio.wait_for(
        herald.client.get_handle(child_notification_id(n.notification_id, 0, 0, ada)).outcome(), 60
    )
    assert child.status is NotificationStatus.resolved and child.resolved == outcome.resolved
    assert sent(fake_http, f"/resolve/{bob}") == 0
