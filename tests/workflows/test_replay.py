"""Replay recorded histories against today's workflow code, so a change that breaks running workflows fails CI.

`make histories` re-records them (HERALD_RECORD_HISTORIES=1); do that only for an intended, versioned change.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from herald.domain.events import plan_firings
from herald.domain.resolve import open_query as resolve_query
from herald.models import (
    Action,
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Clearing,
    Contact,
    DeliveryPolicy,
    DigestStart,
    EventRequest,
    Firing,
    HeartbeatConfig,
    HeartbeatRun,
    HeartbeatSpec,
    HeartbeatState,
    HeartbeatStatus,
    MonitorState,
    NotificationStatus,
    Preferences,
    Priority,
    RetrySettings,
    heartbeat_workflow_id,
    utcnow,
)
from starter import HeraldClient
from tests.conftest import Harness, acking
from tests.fakes.http import FakeHTTPServer
from tests.faults.procs import eventually
from workflows import ALL_WORKFLOWS
from workflows.digest import DigestWorkflow
from workflows.heartbeat import HeartbeatWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
RECORDING = os.environ.get("HERALD_RECORD_HISTORIES") == "1"


def recorded() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


@pytest.mark.parametrize("path", recorded(), ids=lambda p: p.stem)
async def test_replay_recorded_history(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


def test_every_workflow_type_has_a_recorded_history() -> None:
    names = {p.stem.split("-")[0] for p in recorded()}
    expected = {wf.__temporal_workflow_definition.name for wf in ALL_WORKFLOWS}  # type: ignore[attr-defined]
    assert expected <= names, f"record histories for {sorted(expected - names)} with `make histories`"


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_histories(herald: Harness, fake_http: FakeHTTPServer) -> None:
    """Scenarios that between them take every branch of NotificationWorkflow."""
    url = fake_http.script("/record-flaky", 503, 200)
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com", webhook_url=url))

    def note(**fields: Any) -> AgentNotification:
        return AgentNotification(**{"agent_id": "recorder", "user_id": "user-1", "title": "Recorded", **fields})

    scenarios = {
        "delivered": note(title="two channels", channels=[ChannelName.push, ChannelName.email]),
        "retried": note(title="webhook retried", channels=[ChannelName.webhook]),
        "no_channel": note(title="sms for low", priority="low", channels=[ChannelName.sms]),
        "unconfirmed": note(title="critical", priority="critical", channels=[ChannelName.email]),
    }
    with herald.runtime.hub.connect("user-1") as connection:
        acker = asyncio.create_task(acking(connection))
        handles = {name: await herald.client.notify(n) for name, n in scenarios.items()}
        outcomes = {name: await h.outcome() for name, h in handles.items()}
        duplicate = await herald.client.notify(note(title="two channels", channels=[ChannelName.email]))
        handles["duplicate"], outcomes["duplicate"] = duplicate, await duplicate.outcome()
        acker.cancel()

    assert outcomes["duplicate"].status is NotificationStatus.suppressed_duplicate
    assert outcomes["no_channel"].status is NotificationStatus.no_channel
    # Same-named files are overwritten; older versions' histories (other names) stay and keep replaying.
    HISTORIES.mkdir(exist_ok=True)
    for name, handle in handles.items():
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-{name}.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_monitor_history(herald: Harness) -> None:
    """One monitor run: a firing, a cooled-down match, a second rule, a repeated event, then continue-as-new."""
    agent_id = f"recorder-{uuid.uuid4().hex[:6]}"

    def event(*rules: str, event_id: str | None = None) -> EventRequest:
        event_id = event_id or uuid.uuid4().hex
        firings = [
            Firing(
                rule=r,
                cooldown_seconds=600,
                user_ids=["user-1"],
                channels=[ChannelName.email],
                priority=Priority.medium,
                title=f"{r} fired",
            )
            for r in rules
        ]
        return EventRequest(
            agent_id=agent_id,
            event_id=event_id,
            plans=plan_firings(agent_id, event_id, firings, utcnow()),
            policy=herald.client.policy,
        )

    first = event("errors")
    await herald.client.send_event(first, state=MonitorState(agent_id=agent_id, events_per_run=4))
    handle = herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}")
    run_id = (await handle.describe()).run_id
    await herald.client.send_event(event("errors"))
    await herald.client.send_event(event("errors", "latency"))
    await herald.client.send_event(first)  # the same event again: the server answers from the first
    await herald.client.send_event(event("errors"))  # the fourth: the run continues as new
    history = await herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}", run_id=run_id).fetch_history()
    (HISTORIES / "MonitorWorkflow-rotated.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_digest_histories(herald: Harness) -> None:
    """Two low items digested (their notification histories), a flush, and the digest run that sent them."""
    user = f"digest-recorder-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    await herald.store.users.put_preferences(
        user,
        Preferences.model_validate({"digest": {"cadence": "hourly"}, "quiet_hours": {"window": "00:00-23:59"}}),
    )

    def low(title: str) -> AgentNotification:
        return AgentNotification(agent_id="recorder", user_id=user, title=title, priority="low", channels=["email"])

    first = await herald.client.notify(low("digested one"))
    assert (await first.outcome()).status is NotificationStatus.digested
    await (await herald.client.notify(low("digested two"))).outcome()
    handle = herald.client.temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}")
    run_id = (await handle.describe()).run_id
    assert (await handle.execute_update(DigestWorkflow.flush)).digest_id is not None
    digest = await herald.client.temporal.get_workflow_handle(f"digest/{user}", run_id=run_id).fetch_history()
    (HISTORIES / "DigestWorkflow-flushed.json").write_text(digest.to_json())
    digested = await herald.client.temporal.get_workflow_handle(first.workflow_id).fetch_history()
    (HISTORIES / "NotificationWorkflow-digested.json").write_text(digested.to_json())

    # Quiet hours all day (medium is not digested): the notification waits on a durable timer.
    held = await herald.client.notify(
        AgentNotification(agent_id="recorder", user_id=user, title="held", channels=["email"])
    )
    for _ in range(100):
        if (await held.status()).held_until is not None:
            break
        await asyncio.sleep(0.05)
    history = await herald.client.temporal.get_workflow_handle(held.workflow_id).fetch_history()
    (HISTORIES / "NotificationWorkflow-held.json").write_text(history.to_json())
    await herald.client.temporal.get_workflow_handle(held.workflow_id).terminate("recorded")


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_searchable_histories(herald: Harness) -> None:
    """Runs that took the `searchable-v1` patch (search attribute upserts), recorded beside the older ones.

    Record these alone (`-k record_searchable`): the older histories must stay as they are, so the replay test
    keeps proving that runs started before the patch still replay.
    """
    user = f"searchable-{uuid.uuid4().hex[:6]}"
    agent_id = f"recorder-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))

    def note(**fields: Any) -> AgentNotification:
        return AgentNotification(**{"agent_id": agent_id, "user_id": user, "title": "Recorded", **fields})

    scenarios = {
        "fallback": note(title="push falls back", channels=[ChannelName.push]),  # nobody connected: email
        "unconfirmed": note(title="critical", priority="critical", channels=[ChannelName.email]),
        "no_channel": note(title="sms for low", priority="low", channels=[ChannelName.sms]),
    }
    handles = {name: await herald.client.notify(n) for name, n in scenarios.items()}
    outcomes = {name: await h.outcome() for name, h in handles.items()}
    duplicate = await herald.client.notify(note(title="push falls back", channels=[ChannelName.push]))
    handles["duplicate"], outcomes["duplicate"] = duplicate, await duplicate.outcome()
    assert outcomes["fallback"].status is NotificationStatus.delivered
    assert outcomes["unconfirmed"].status is NotificationStatus.unconfirmed
    assert outcomes["duplicate"].status is NotificationStatus.suppressed_duplicate

    # A monitor that starts its notification as a child (search attributes and summary set at the start).
    event_id = uuid.uuid4().hex
    firing = Firing(
        rule="errors",
        cooldown_seconds=600,
        user_ids=[user],
        channels=[ChannelName.email],
        priority=Priority.high,
        title="errors fired",
    )
    request = EventRequest(
        agent_id=agent_id,
        event_id=event_id,
        plans=plan_firings(agent_id, event_id, [firing], utcnow()),
        policy=herald.client.policy,
    )
    await herald.client.send_event(request)
    monitor = herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}")

    # A digest run, started by the activity without search attributes, that sends its child on a flush.
    await herald.store.users.put_preferences(user, Preferences.model_validate({"digest": {"cadence": "hourly"}}))
    low = await herald.client.notify(note(title="digested", priority="low", channels=[ChannelName.email]))
    assert (await low.outcome()).status is NotificationStatus.digested
    digest = herald.client.temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}")
    run_id = (await digest.describe()).run_id
    assert (await digest.execute_update(DigestWorkflow.flush)).digest_id is not None

    for name, handle in handles.items():
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-searchable_{name}.json").write_text(history.to_json())
    history = await monitor.fetch_history()
    (HISTORIES / "MonitorWorkflow-searchable.json").write_text(history.to_json())
    await monitor.terminate("recorded")
    history = await herald.client.temporal.get_workflow_handle(f"digest/{user}", run_id=run_id).fetch_history()
    (HISTORIES / "DigestWorkflow-searchable.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_local_histories(herald: Harness, fake_http: FakeHTTPServer) -> None:
    """Runs that took the `local-steps-v1` patch: store steps and first attempts as local activities.

    Record these alone (`-k record_local`), so the histories of older runs stay as they are.
    """
    user = f"local-{uuid.uuid4().hex[:6]}"
    url = fake_http.script(f"/record-local-{user}", 503, 200)
    await herald.store.users.put_contact(user, Contact(email="ada@example.com", webhook_url=url))

    def note(**fields: Any) -> AgentNotification:
        return AgentNotification(**{"agent_id": "recorder", "user_id": user, "title": "Recorded", **fields})

    scenarios = {
        "delivered": note(title="two channels", channels=[ChannelName.push, ChannelName.email]),
        "retried": note(title="webhook retried", channels=[ChannelName.webhook]),
        "fallback": note(title="sms missing", priority="high", channels=[ChannelName.sms]),
        "escalated": note(title="critical", priority="critical", channels=[ChannelName.email]),
    }
    with herald.runtime.hub.connect(user) as connection:
        acker = asyncio.create_task(acking(connection))
        handles = {name: await herald.client.notify(n) for name, n in scenarios.items()}
        outcomes = {name: await h.outcome() for name, h in handles.items()}
        duplicate = await herald.client.notify(note(title="two channels", channels=[ChannelName.email]))
        handles["duplicate"], outcomes["duplicate"] = duplicate, await duplicate.outcome()
        acker.cancel()
    await herald.store.users.put_preferences(user, Preferences.model_validate({"digest": {"cadence": "hourly"}}))
    digested = await herald.client.notify(note(title="digested", priority="low", channels=[ChannelName.email]))
    handles["digested"], outcomes["digested"] = digested, await digested.outcome()

    assert outcomes["delivered"].status is NotificationStatus.delivered
    assert outcomes["retried"].channels[ChannelName.webhook].attempt_count == 2
    assert outcomes["fallback"].channels[ChannelName.sms].error_type == "ContactMissing"
    assert outcomes["escalated"].status is NotificationStatus.confirmed  # email, then escalated to push
    assert outcomes["duplicate"].status is NotificationStatus.suppressed_duplicate
    assert outcomes["digested"].status is NotificationStatus.digested
    for name, handle in handles.items():
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-local_{name}.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_answer_histories(herald: Harness) -> None:
    """Questions (the `answers-v1` patch): one acked then answered while it waits, one that expires.

    Record these alone (`-k record_answer`), beside the older histories.
    """
    user = f"asked-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))

    def question(title: str, seconds: float) -> AgentNotification:
        return AgentNotification(
            agent_id="recorder",
            user_id=user,
            title=title,
            channels=[ChannelName.email],
            actions=[Action(id="approve", label="Approve"), Action(id="deny", label="Deny")],
            respond_by=utcnow() + timedelta(seconds=seconds),
        )

    answered, expired = question("answered", 600), question("expired", 2)
    handles = {"answered": await herald.client.notify(answered), "expired": await herald.client.notify(expired)}
    for _ in range(400):
        status = await handles["answered"].status()
        if ChannelName.email in status.delivered_channels:
            break
        await asyncio.sleep(0.025)
    await herald.client.respond(answered.notification_id, "ack", user)
    await herald.client.respond(answered.notification_id, "approve", user)
    assert (await handles["answered"].outcome()).status is NotificationStatus.answered
    assert (await handles["expired"].outcome()).status is NotificationStatus.expired
    for name, handle in handles.items():
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-question_{name}.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_text_answer_history(herald: Harness) -> None:
    """A question with an action answered in words, answered with text (free-text answers add no command: this
    history keeps that so). Record it alone (`-k record_text_answer`), beside the older histories."""
    user = f"asked-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    asked = AgentNotification(
        agent_id="recorder",
        user_id=user,
        title="text answered",
        channels=[ChannelName.email],
        actions=[Action(id="approve", label="Approve"), Action(id="reply", label="Reply", input="text")],
        respond_by=utcnow() + timedelta(seconds=600),
    )
    handle = await herald.client.notify(asked)
    for _ in range(400):
        if ChannelName.email in (await handle.status()).delivered_channels:
            break
        await asyncio.sleep(0.025)
    await herald.client.respond(asked.notification_id, "reply", user, text="Recorded words")
    outcome = await handle.outcome()
    assert outcome.answer is not None and outcome.answer.text == "Recorded words"
    history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    (HISTORIES / "NotificationWorkflow-question_text_answered.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_firing_histories(herald: Harness) -> None:
    """Runs that took `monitor-firings-v1` and `digest-rotate-v1`, recorded beside the older ones.

    Record these alone (`-k record_firing`). The monitor: a firing per dedup_key, a cooled-down key, then one
    event per run, so it continues as new and an event retried in the next run finds its notification done.
    The digest: a run that continues as new mid-period (two items per run), and the run that sends on a flush.
    """
    agent_id = f"recorder-{uuid.uuid4().hex[:6]}"

    def event(key: str | None, event_id: str | None = None) -> EventRequest:
        event_id = event_id or uuid.uuid4().hex
        firing = Firing(
            rule="disk",
            cooldown_seconds=1,
            user_ids=["user-1"],
            channels=[ChannelName.email],
            priority=Priority.medium,
            title="disk fired",
            dedup_key=key,
        )
        return EventRequest(
            agent_id=agent_id,
            event_id=event_id,
            plans=plan_firings(agent_id, event_id, [firing], utcnow()),
            policy=herald.client.policy,
        )

    first = event("web-1")
    result = await herald.client.send_event(first, state=MonitorState(agent_id=agent_id, events_per_run=3))
    [nid] = result.fired[0].notification_ids
    monitor = herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}")
    run_id = (await monitor.describe()).run_id
    await herald.client.send_event(event("db-1"))
    await herald.client.send_event(event("web-1"))  # cooling down: the third event, the run continues as new
    await herald.client.temporal.get_workflow_handle(f"notification/{nid}").result()
    await asyncio.sleep(1.2)  # web-1's cooldown ends
    retried = await herald.client.send_event(first)  # the next run: the notification exists, nothing starts
    assert retried.fired[0].notification_ids == [nid]
    history = await herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}", run_id=run_id).fetch_history()
    (HISTORIES / "MonitorWorkflow-firings_rotated.json").write_text(history.to_json())
    next_run = (await monitor.describe()).run_id
    await monitor.terminate("recorded")
    history = await herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}", run_id=next_run).fetch_history()
    (HISTORIES / "MonitorWorkflow-firings_retried.json").write_text(history.to_json())

    user = f"digest-recorder-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    hour = (utcnow().hour + 12) % 24
    await herald.store.users.put_preferences(
        user, Preferences.model_validate({"digest": {"cadence": "daily", "hour": hour}})
    )
    await herald.client.temporal.start_workflow(
        DigestWorkflow.run,
        DigestStart(user_id=user, policy=herald.client.policy, items_per_run=2),
        id=f"digest/{user}",
        task_queue=herald.client.task_queue,
    )
    digest = herald.client.temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}")
    first_run = (await digest.describe()).run_id
    for title in ("one", "two", "three"):
        low = AgentNotification(agent_id="recorder", user_id=user, title=title, priority="low", channels=["email"])
        assert (await (await herald.client.notify(low)).outcome()).status is NotificationStatus.digested
    for _ in range(100):
        if len(await digest.query(DigestWorkflow.pending)) == 3:
            break
        await asyncio.sleep(0.1)
    last_run = (await digest.describe()).run_id
    assert last_run != first_run
    assert (await digest.execute_update(DigestWorkflow.flush)).digest_id is not None
    history = await herald.client.temporal.get_workflow_handle(f"digest/{user}", run_id=first_run).fetch_history()
    (HISTORIES / "DigestWorkflow-rotated.json").write_text(history.to_json())
    history = await herald.client.temporal.get_workflow_handle(f"digest/{user}", run_id=last_run).fetch_history()
    (HISTORIES / "DigestWorkflow-rotated_flushed.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_question_end_histories(herald: Harness) -> None:
    """Questions on the `question-ends-v1` patch: an original a duplicate joined (it signals its outcome back), the
    duplicate, a duplicate of a question that had finished (read from the store), and a critical question that
    reached nobody (ops alert). Record these alone (`-k record_question_end`), beside the older histories."""
    user, off = f"ends-{uuid.uuid4().hex[:6]}", f"ends-off-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    await herald.store.users.put_preferences(
        off, Preferences.model_validate({"default": {"push": False, "email": False, "sms": False, "webhook": False}})
    )

    def question(user_id: str, **fields: Any) -> AgentNotification:
        return AgentNotification(
            **{
                "agent_id": "recorder",
                "user_id": user_id,
                "title": "Ship it?",
                "channels": [ChannelName.email],
                "actions": [Action(id="approve", label="Approve"), Action(id="deny", label="Deny")],
                "respond_by": utcnow() + timedelta(seconds=600),
                **fields,
            }
        )

    original = await herald.client.notify(question(user))
    joined = await herald.client.notify(question(user))
    for _ in range(400):
        if (await joined.status()).status is NotificationStatus.pending:
            break
        await asyncio.sleep(0.025)
    await herald.client.respond(original.notification_id, "approve", user)
    assert (await joined.outcome()).status is NotificationStatus.answered
    finished = await herald.client.notify(question(user))
    assert (await finished.outcome()).answer is not None
    unreached = await herald.client.notify(question(off, priority=Priority.critical))
    assert (await unreached.outcome()).ops_alert is not None
    handles = {"original": original, "joined": joined, "joined_finished": finished, "no_channel": unreached}
    for name, handle in handles.items():
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-question_end_{name}.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_critical_no_channel_history(herald: Harness) -> None:
    """A critical notification no channel can carry (`critical-no-channel-v1`): no_channel with an ops alert.

    Record it alone (`-k record_critical_no_channel`), beside the older histories.
    """
    user = f"unreachable-{uuid.uuid4().hex[:6]}"
    off = {"default": {"push": False, "email": False, "sms": False, "webhook": False}}
    await herald.store.users.put_preferences(user, Preferences.model_validate(off))
    critical = AgentNotification(
        agent_id="recorder", user_id=user, title="prod down", priority=Priority.critical, channels=[ChannelName.email]
    )
    handle = await herald.client.notify(critical)
    assert (await handle.outcome()).status is NotificationStatus.no_channel
    history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    (HISTORIES / "NotificationWorkflow-critical_no_channel.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_silence_histories(herald: Harness) -> None:
    """Runs on the `silences-v1` patch: one a silence holds (`silenced`), a question it holds (asks nobody), and one
    it checked and let through (delivered). Record these alone (`-k record_silence`), beside the older histories."""
    from herald.domain.silences import new_silence
    from herald.models import SilenceInput

    user = f"silenced-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    now = utcnow()
    silence = new_silence(
        SilenceInput(matchers={"user_id": user, "agent_id": "recorder"}, ends_at=now + timedelta(hours=1), comment="r"),
        "admin",
        now,
    )
    await herald.store.silences.put_silence(silence)

    def note(**fields: Any) -> AgentNotification:
        return AgentNotification(**{"agent_id": "recorder", "user_id": user, "channels": [ChannelName.email], **fields})

    handles = {
        "silenced": await herald.client.notify(note(title="held by the silence")),
        "silenced_question": await herald.client.notify(
            note(title="ship it?", actions=[Action(id="yes", label="Yes")], respond_by=now + timedelta(minutes=10))
        ),
        "silence_checked": await herald.client.notify(note(title="critical gets through", priority="critical")),
    }
    outcomes = {name: await h.outcome() for name, h in handles.items()}
    assert outcomes["silenced"].status is NotificationStatus.silenced
    assert outcomes["silenced_question"].status is NotificationStatus.silenced
    assert outcomes["silence_checked"].status is not NotificationStatus.silenced
    for name, handle in handles.items():
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-{name}.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_resolved_histories(herald: Harness, fake_http: FakeHTTPServer) -> None:
    """Runs under `resolve-v1`: one resolved while its retry waited (the timer cancelled), one delivered at once
    (the patch marker and nothing else new). Record them alone (`-k record_resolved`), beside the older histories.
    """
    url = fake_http.script("/record-resolve", 503, 200)
    user = f"resolving-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(webhook_url=url))
    slow = RetrySettings(initial_interval_seconds=3600, maximum_interval_seconds=3600)
    client = HeraldClient(herald.client.temporal, herald.client.task_queue, DeliveryPolicy(retry=slow))
    alert = AgentNotification(
        agent_id="recorder", user_id=user, title="disk full", channels=[ChannelName.webhook], dedup_key="disk/db-1"
    )
    handle = await client.notify(alert)
    workflow = herald.client.temporal.get_workflow_handle(handle.workflow_id)

    async def retry_waits() -> bool:
        async for event in workflow.fetch_history_events():
            if event.HasField("timer_started_event_attributes"):
                return True
        return False

    query = resolve_query("recorder", "disk/db-1")
    for _ in range(400):
        if await retry_waits() and (await herald.client.temporal.count_workflows(query)).count == 1:
            break
        await asyncio.sleep(0.025)
    assert (await client.resolve("recorder", "disk/db-1")).resolved == [handle.notification_id]
    assert (await handle.outcome()).status is NotificationStatus.resolved
    (HISTORIES / "NotificationWorkflow-resolved_retry.json").write_text((await workflow.fetch_history()).to_json())

    plain = await herald.client.notify(
        AgentNotification(agent_id="recorder", user_id=user, title="fine", channels=[ChannelName.email])
    )
    assert (await plain.outcome()).status is NotificationStatus.delivered
    history = await herald.client.temporal.get_workflow_handle(plain.workflow_id).fetch_history()
    (HISTORIES / "NotificationWorkflow-resolvable_delivered.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_resolve_ended_histories(herald: Harness) -> None:
    """ResolveEndedWorkflow: one resolving an alert delivered by email and Slack (to the outbox) after its workflow
    completed (the outcome recorded, the announce and the chat edit), one that finds it already resolved (nothing
    more). Record them alone (`-k record_resolve_ended`), beside the older histories."""
    from herald.domain.resolve import ended_query, resolve_ended_id
    from herald.models import ResolveEnded, ResolveEndedResult
    from workflows.resolve import ResolveEndedWorkflow

    user = f"ended-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com", slack_user_id="U0RECORDER"))
    alert = AgentNotification(
        agent_id="recorder",
        user_id=user,
        title="disk full",
        priority=Priority.high,
        channels=[ChannelName.email, ChannelName.slack],
        dedup_key=f"disk/{user}",
    )
    handle = await herald.client.notify(alert)
    outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.delivered and len(outcome.delivered_channels) == 2
    query = ended_query("recorder", f"disk/{user}")
    await eventually(lambda: _count(herald, query), "the completed notification in visibility")
    assert (await herald.client.resolve("recorder", f"disk/{user}")).resolved == [handle.notification_id]
    run = herald.client.temporal.get_workflow_handle(
        resolve_ended_id(handle.notification_id), result_type=ResolveEndedResult
    )
    assert (await run.result()).resolved
    (HISTORIES / "ResolveEndedWorkflow-resolved.json").write_text((await run.fetch_history()).to_json())

    again = await herald.client.temporal.start_workflow(
        ResolveEndedWorkflow.run,
        ResolveEnded(notification_id=handle.notification_id, by="admin"),
        id=f"recorder-{uuid.uuid4().hex}",
        task_queue=herald.client.task_queue,
    )
    assert (await again.result()).reason is not None
    (HISTORIES / "ResolveEndedWorkflow-already_resolved.json").write_text((await again.fetch_history()).to_json())


async def _count(herald: Harness, query: str) -> bool:
    return (await herald.client.temporal.count_workflows(query)).count == 1


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_heartbeat_histories(herald: Harness) -> None:
    """A heartbeat missed, its spec changed while missed, resumed by a ping, stopped; and one that continues as
    new after two pings. Record them alone (`-k record_heartbeat`)."""
    agent = f"recorder-{uuid.uuid4().hex[:6]}"
    notify = {"user_id": "user-1", "channels": ["email"]}

    def spec(name: str, every: int) -> HeartbeatSpec:
        values = {"name": name, "agent_id": agent, "every_seconds": every, "grace_seconds": 0, "notify": notify}
        return HeartbeatSpec.model_validate(values)

    async def state_is(name: str, state: HeartbeatState) -> bool:
        handle = herald.client.temporal.get_workflow_handle(heartbeat_workflow_id(agent, name))
        return (await handle.query("status", result_type=HeartbeatStatus)).state is state

    await herald.client.set_heartbeat(spec("missed", 1))
    await eventually(lambda: state_is("missed", HeartbeatState.missed), "missed", 30)
    await herald.client.set_heartbeat(spec("missed", 3600))
    await herald.client.ping(agent, "missed")
    await eventually(lambda: state_is("missed", HeartbeatState.up), "resumed", 30)
    await herald.client.delete_heartbeat(agent, "missed")

    rotating = spec("rotated", 3600)
    config = HeartbeatConfig(spec=rotating, policy=herald.client.policy)
    started = await herald.client.temporal.start_workflow(
        HeartbeatWorkflow.run,
        HeartbeatRun(config=config, pings_per_run=2),
        id=rotating.workflow_id,
        task_queue=herald.client.task_queue,
    )
    first_run = herald.client.temporal.get_workflow_handle(rotating.workflow_id, run_id=started.result_run_id)

    async def continued() -> bool:
        return (await first_run.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW

    await herald.client.ping(agent, "rotated")
    await herald.client.ping(agent, "rotated")
    await eventually(continued, "continued as new", 30)
    await herald.client.delete_heartbeat(agent, "rotated")
    await herald.client.temporal.get_workflow_handle(rotating.workflow_id).result()

    missed = herald.client.temporal.get_workflow_handle(heartbeat_workflow_id(agent, "missed"))
    await missed.result()
    for name, handle in (("missed", missed), ("rotated", first_run)):
        history = await handle.fetch_history()
        (HISTORIES / f"HeartbeatWorkflow-{name}.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_throttle_histories(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """Runs over max_per_hour: one throttled into the digest, one (no digest) counted into the window's message on
    the `throttle-v1` patch, one whose SMS was left out, and the ThrottleSummaryWorkflow that sent the message.
    Record these alone (`-k record_throttle`), beside the older histories."""
    from herald.domain.throttle import summary_workflow_id
    from tests.workflows.test_throttle import harness
    from workflows.throttle import ThrottleSummaryWorkflow

    stack = harness(temporal_env, tmp_path, 3.0)
    h = await anext(stack)
    try:
        digesting, plain = f"throttled-{uuid.uuid4().hex[:6]}", f"summarized-{uuid.uuid4().hex[:6]}"
        for user, prefs in (
            (digesting, {"default": {"max_per_hour": 1}, "digest": {"cadence": "hourly"}}),
            (
                plain,
                {
                    "default": {"max_per_hour": 1},
                    "agents": {"sms-recorder": {"max_per_hour": 9, "sms": {"max_per_hour": 1}}},
                },
            ),
        ):
            await h.store.users.put_contact(user, Contact(email="ada@example.com", phone="+14155550100"))
            await h.store.users.put_preferences(user, Preferences.model_validate(prefs))

        def note(user: str, **fields: Any) -> AgentNotification:
            values = {"agent_id": "recorder", "user_id": user, "channels": [ChannelName.email]}
            values["title"] = f"tick {uuid.uuid4().hex[:6]}"  # never a duplicate of the one before
            return AgentNotification(**{**values, **fields})

        async def two(user: str, **fields: Any) -> Any:
            # Back to back in one window (a window of 3 s may turn between them: then try again).
            for _ in range(5):
                await (await h.client.notify(note(user, **fields))).outcome()
                second = await h.client.notify(note(user, **fields))
                outcome = await second.outcome()
                if outcome.status is NotificationStatus.throttled or outcome.throttled_channels:
                    return second
            raise AssertionError("never throttled")

        handles = {
            "throttled_digest": await two(digesting),
            "throttled_summary": await two(plain),
        }
        sms = {"agent_id": "sms-recorder", "priority": Priority.high, "channels": [ChannelName.email, ChannelName.sms]}
        handles["throttled_channel"] = await two(plain, **sms)
        assert (await handles["throttled_channel"].outcome()).throttled_channels == [ChannelName.sms]
        for name, handle in handles.items():
            history = await h.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
            (HISTORIES / f"NotificationWorkflow-{name}.json").write_text(history.to_json())
        summary = h.client.temporal.get_workflow_handle_for(
            ThrottleSummaryWorkflow.run, summary_workflow_id(plain, "recorder")
        )
        await summary.result()
        history = await summary.fetch_history()
        (HISTORIES / "ThrottleSummaryWorkflow-sent.json").write_text(history.to_json())
    finally:
        await stack.aclose()


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_resolved_chat_history(herald: Harness) -> None:
    """Under `resolve-v1`: a high question delivered to Slack and email (the outbox here), resolved while it waits
    for its answer: announce_resolved (the email's `Resolved:` by notify_resolved's default), then the chat edit
    (`conclude_chat`, behind chat-conclude-v1). Record it alone (`-k record_resolved_chat`)."""
    user = f"resolving-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(slack_user_id="U024BE7LH", email="ada@example.com"))
    question = AgentNotification(
        agent_id="recorder",
        user_id=user,
        title="disk full",
        priority=Priority.high,
        channels=[ChannelName.slack, ChannelName.email],
        actions=[Action(id="restart", label="Restart")],
        dedup_key="disk/db-2",
    )
    handle = await herald.client.notify(question)
    query = resolve_query("recorder", "disk/db-2")
    for _ in range(400):
        status = await herald.client.status(question.notification_id)
        delivered = all(
            (r := status.channels.get(c)) is not None and r.status is ChannelStatus.delivered for c in question.channels
        )
        if delivered and (await herald.client.temporal.count_workflows(query)).count == 1:
            break
        await asyncio.sleep(0.025)
    assert (await herald.client.resolve("recorder", "disk/db-2")).resolved == [handle.notification_id]
    assert (await handle.outcome()).status is NotificationStatus.resolved
    history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
    assert "conclude_chat" in history.to_json()
    (HISTORIES / "NotificationWorkflow-resolved_chat_question.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_monitor_resolve_history(herald: Harness) -> None:
    """One monitor run under monitor-resolve-v1: a rule with `resolve: true` fires (remembered), an event clears it
    (the resolve_notifications activity), a third event continues as new. Record it alone (`-k record_monitor_resolve`).
    """
    agent_id = f"recorder-{uuid.uuid4().hex[:6]}"

    def event(fire: bool) -> EventRequest:
        event_id = uuid.uuid4().hex
        firing = Firing(
            rule="disk-full",
            cooldown_seconds=0,
            user_ids=["user-1"],
            channels=[ChannelName.email],
            priority=Priority.medium,
            title="disk full",
            dedup_key="db-1",
            resolve=True,
        )
        return EventRequest(
            agent_id=agent_id,
            event_id=event_id,
            plans=plan_firings(agent_id, event_id, [firing], utcnow()) if fire else [],
            policy=herald.client.policy,
            clearing=[] if fire else [Clearing(rule="disk-full", cooldown_key="db-1")],
        )

    await herald.client.send_event(event(True), state=MonitorState(agent_id=agent_id, events_per_run=3))
    handle = herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}")
    run_id = (await handle.describe()).run_id
    await herald.client.send_event(event(False))
    await herald.client.send_event(event(True))  # the third: the run continues as new
    history = await herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}", run_id=run_id).fetch_history()
    assert "resolve_notifications" in history.to_json()
    (HISTORIES / "MonitorWorkflow-resolving_rule.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_subscription_histories(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """SubscriptionWorkflow: one run whose subscriber failed an event (after its retry), took the next (the count
    reset) and ended `gone` once deleted; one disabled after two failed events. Record these alone
    (`-k record_subscription`)."""
    from temporalio.common import WorkflowIDConflictPolicy

    from herald.domain.subscriptions import outcome_events
    from herald.models import SubscriptionEventType, SubscriptionRun
    from herald.services.subscriptions import EVENT_SIGNAL, subscription_workflow_id
    from tests.conftest import make_settings
    from tests.fakes.http import start_fake
    from tests.workflows.test_subscriptions import note, subscribe, until
    from worker import create_worker, open_runtime

    fake = FakeHTTPServer()
    server, task, fake.port = await start_fake(fake)
    settings = make_settings(
        tmp_path / "herald",
        retry_initial_seconds=0.1,
        retry_backoff=1.0,
        retry_max_interval_seconds=0.2,
        retry_max_retries=1,
        subscription_max_failures=2,
    )
    task_queue = f"record-subs-{uuid.uuid4().hex[:8]}"
    try:
        async with (
            open_runtime(settings) as runtime,
            create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
        ):
            h = Harness(HeraldClient(temporal_env.client, task_queue, DeliveryPolicy()), runtime, settings)
            user = f"subscriber-{uuid.uuid4().hex[:6]}"
            await h.store.users.put_contact(user, Contact(email="ada@example.com"))
            kinds = [SubscriptionEventType.delivered]
            # sent, then gone
            agent, name = f"rec-{uuid.uuid4().hex[:6]}", f"rec-sent-{uuid.uuid4().hex[:6]}"
            await subscribe(h, name, fake.script("/sent", 500, 500), kinds, agent)
            first = await (await h.client.notify(note(agent, user))).outcome()
            second = await (await h.client.notify(note(agent, user, title="second"))).outcome()
            await until(lambda: len(fake.received("/sent")) >= 3)
            assert await h.store.subscriptions.delete_subscription(name)
            handle = h.client.temporal.get_workflow_handle(subscription_workflow_id(name))
            [late] = outcome_events(second.model_copy(update={"notification_id": "late"}), utcnow())
            await handle.signal(EVENT_SIGNAL, late)
            assert await handle.result() == "gone"
            assert first.notification_id
            (HISTORIES / "SubscriptionWorkflow-sent_then_gone.json").write_text(
                (await handle.fetch_history()).to_json()
            )
            # disabled
            agent, name = f"rec-{uuid.uuid4().hex[:6]}", f"rec-off-{uuid.uuid4().hex[:6]}"
            await subscribe(h, name, fake.script("/off", *([500] * 10)), kinds, agent)
            for i in range(2):
                await (await h.client.notify(note(agent, user, title=f"n{i}"))).outcome()
            handle = h.client.temporal.get_workflow_handle(subscription_workflow_id(name))
            assert await handle.result() == "disabled"
            (HISTORIES / "SubscriptionWorkflow-disabled.json").write_text((await handle.fetch_history()).to_json())
            # continued as new after one event, with the next pending
            name = f"rec-rot-{uuid.uuid4().hex[:6]}"
            await subscribe(h, name, fake.script("/rot"), kinds, agent)
            run = SubscriptionRun(name=name, retry=RetrySettings(initial_interval_seconds=0.1), events_per_run=1)
            firsts = []
            for i in range(2):
                [event] = outcome_events(second.model_copy(update={"notification_id": f"rot-{i}"}), utcnow())
                started = await h.client.temporal.start_workflow(
                    "SubscriptionWorkflow",
                    run,
                    id=subscription_workflow_id(name),
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    start_signal=EVENT_SIGNAL,
                    start_signal_args=[event],
                )
                firsts.append(started.result_run_id)
            await until(lambda: len(fake.received("/rot")) >= 2)
            rotated = h.client.temporal.get_workflow_handle(subscription_workflow_id(name), run_id=firsts[0])
            history = await rotated.fetch_history()
            assert "continue_as_new" in history.to_json().lower() or "continuedasnew" in history.to_json().lower()
            (HISTORIES / "SubscriptionWorkflow-rotated.json").write_text(history.to_json())
            await h.client.temporal.get_workflow_handle(subscription_workflow_id(name)).terminate("recorded")
    finally:
        server.should_exit = True
        await task


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_group_histories(herald: Harness) -> None:
    """Two notifications with one group_key on the `group-v1` patch (each ends `grouped`), the GroupWorkflow that
    sent their one message and ended after its interval, and that message's own run (`is_group`). Record these
    alone (`-k record_group`), beside the older histories."""
    from herald.domain.grouping import group_workflow_id
    from workflows.group import GroupWorkflow

    user = f"grouped-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))

    def note(title: str) -> AgentNotification:
        return AgentNotification(
            agent_id="recorder",
            user_id=user,
            title=title,
            channels=[ChannelName.email],
            group_key="checkout/eu",
            group_wait_seconds=1,
            group_interval_seconds=1,
        )

    first = await herald.client.notify(note("checkout error 1"))
    await herald.client.notify(note("checkout error 2"))
    assert (await first.outcome()).status is NotificationStatus.grouped
    group = herald.client.temporal.get_workflow_handle_for(
        GroupWorkflow.run, group_workflow_id(user, "recorder", "checkout/eu")
    )
    await group.result()
    recorded_first = await herald.store.notifications.get_outcome(first.notification_id)
    assert recorded_first is not None and recorded_first.group_delivery is not None
    message = herald.client.get_handle(recorded_first.group_delivery.notification_id)
    assert (await message.outcome()).status is NotificationStatus.delivered
    for name, workflow_id in (("grouped", first.workflow_id), ("group_message", message.workflow_id)):
        history = await herald.client.temporal.get_workflow_handle(workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-{name}.json").write_text(history.to_json())
    history = await group.fetch_history()
    (HISTORIES / "GroupWorkflow-sent.json").write_text(history.to_json())


@pytest.mark.skipif(not RECORDING, reason="set HERALD_RECORD_HISTORIES=1 (make histories) to re-record")
async def test_record_team_histories(herald: Harness) -> None:
    """Notifications to a group on the `team-v1` patch: one fanned out to two members (the group's run and a
    member's), and a question with a quorum of two approvals decided by two members (the group's run, a member who
    answered, and the third member's, closed by the decision). Record these alone (`-k record_team`)."""
    from herald.domain.teams import member_notification_id
    from herald.models import Group

    suffix = uuid.uuid4().hex[:6]
    users = [f"{name}-{suffix}" for name in ("ada", "grace", "linus")]
    for user in users:
        await herald.store.users.put_contact(user, Contact(email=f"{user}@example.com"))
    now = utcnow()
    await herald.store.groups.put(Group(name=f"pair-{suffix}", members=users[:2], created_at=now, updated_at=now))
    await herald.store.groups.put(Group(name=f"trio-{suffix}", members=users, created_at=now, updated_at=now))

    told = await herald.client.notify(
        AgentNotification(agent_id="recorder", group=f"pair-{suffix}", title="deployed", channels=[ChannelName.email])
    )
    assert (await told.outcome()).status is NotificationStatus.delivered
    asked = AgentNotification(
        agent_id="recorder",
        group=f"trio-{suffix}",
        title="deploy?",
        channels=[ChannelName.email],
        actions=[Action(id="approve", label="Approve"), Action(id="deny", label="Deny")],
        respond_by=utcnow() + timedelta(seconds=600),
        quorum={"action": "approve", "count": 2},  # type: ignore[arg-type]
    )
    asking = await herald.client.notify(asked)
    for user in users[:2]:
        member = herald.client.get_handle(member_notification_id(asked.notification_id, user))
        await eventually(lambda member=member: _delivered(member), "the member's email")
        await herald.client.respond(member.notification_id, "approve", user)
    assert (await asking.outcome()).status is NotificationStatus.answered
    runs = {
        "team": told.notification_id,
        "team_member": member_notification_id(told.notification_id, users[0]),
        "team_quorum": asked.notification_id,
        "team_quorum_member": member_notification_id(asked.notification_id, users[0]),
        "team_quorum_closed": member_notification_id(asked.notification_id, users[2]),
    }
    for name, notification_id in runs.items():
        handle = herald.client.get_handle(notification_id)
        await handle.outcome()
        history = await herald.client.temporal.get_workflow_handle(handle.workflow_id).fetch_history()
        (HISTORIES / f"NotificationWorkflow-{name}.json").write_text(history.to_json())


async def _delivered(handle: Any) -> bool:
    from temporalio.service import RPCError

    try:
        return ChannelName.email in (await handle.status()).delivered_channels
    except RPCError:  # not started yet
        return False


async def test_record_escalation_histories(herald: Harness) -> None:
    """Runs on the `escalation-v1` patch: an escalation whose step 1 nobody acks and whose step 2 acks (the parent), the
    step-1 child told who took it, the step-2 child acked, and a policy that does not exist. Record these alone
    (`-k record_escalation`), beside the older histories."""
    from herald.domain.oncall import child_notification_id
    from herald.models.oncall import EscalationPolicy

    ada, bob = f"ada-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    for user in (ada, bob):
        await herald.store.users.put_contact(user, Contact(email=f"{user}@example.com"))
    await herald.store.oncall.put_policy(
        EscalationPolicy(
            name="recorded",
            updated_at=utcnow(),
            steps=[
                {"targets": [f"user:{ada}"], "ack_within_seconds": 1},
                {"targets": [f"user:{bob}"], "ack_within_seconds": 60},
            ],
        )
    )
    n = AgentNotification(
        agent_id="recorder", user_id=ada, title="Escalated", channels=[ChannelName.email], escalation_policy="recorded"
    )
    parent = await herald.client.notify(n)
    bob_child = child_notification_id(n.notification_id, 0, 1, bob)

    async def bob_asked() -> bool:
        try:
            await herald.client.temporal.get_workflow_handle(f"notification/{bob_child}").describe()
        except Exception:
            return False
        return True

    await eventually(bob_asked, "step 2 started", 60)
    await herald.client.respond(bob_child, "ack", bob, "slack")
    outcome = await parent.outcome()
    assert outcome.status is NotificationStatus.confirmed
    unknown = await herald.client.notify(
        n.model_copy(update={"notification_id": uuid.uuid4().hex, "title": "Nowhere", "escalation_policy": "none"})
    )
    assert (await unknown.outcome()).status is NotificationStatus.no_channel
    # Resolved while step 1 waits: its person's notification resolved too.
    carol = f"carol-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(carol, Contact(email=f"{carol}@example.com"))
    await herald.store.oncall.put_policy(
        EscalationPolicy(
            name="recorded-resolve",
            updated_at=utcnow(),
            steps=[{"targets": [f"user:{carol}"], "ack_within_seconds": 60}],
        )
    )
    resolvable = n.model_copy(
        update={
            "notification_id": uuid.uuid4().hex,
            "title": "Resolvable",
            "dedup_key": "recorded-escalation",
            "escalation_policy": "recorded-resolve",
        }
    )
    resolving = await herald.client.notify(resolvable)
    carol_child = child_notification_id(resolvable.notification_id, 0, 0, carol)

    async def carol_waits() -> bool:
        try:
            return (await herald.client.get_handle(carol_child).status()).status is NotificationStatus.pending and bool(
                (await herald.client.get_handle(carol_child).status()).delivered_channels
            )
        except Exception:
            return False

    await eventually(carol_waits, "step 1 delivered, waiting", 60)

    async def resolved() -> bool:
        return bool((await herald.client.resolve("recorder", "recorded-escalation")).resolved)

    await eventually(resolved, "the escalation resolved", 60, 0.5)
    assert (await resolving.outcome()).status is NotificationStatus.resolved
    ids = {
        "escalation_resolved": resolving.workflow_id,
        "escalation_child_resolved": f"notification/{carol_child}",
        "escalation_acked": parent.workflow_id,
        "escalation_taken": f"notification/{child_notification_id(n.notification_id, 0, 0, ada)}",
        "escalation_child_acked": f"notification/{bob_child}",
        "escalation_unknown_policy": unknown.workflow_id,
    }
    for name, workflow_id in ids.items():
        handle = herald.client.temporal.get_workflow_handle(workflow_id)
        await handle.result()
        (HISTORIES / f"NotificationWorkflow-{name}.json").write_text((await handle.fetch_history()).to_json())
