"""Digests on the real dev server, with boundaries every few seconds (HERALD_DIGEST_PERIOD_SECONDS)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from herald.domain.digest import DIGEST_AGENT, digest_item
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    DigestItem,
    DigestStart,
    NotificationStatus,
    Preferences,
    Priority,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness, make_settings
from tests.fakes.http import start_fake
from tests.fakes.sendgrid import MAIL_SEND_PATH, FakeSendGrid
from tests.faults.procs import herald_env, herald_worker
from worker import create_worker, open_runtime
from workflows.digest import DigestWorkflow

PERIOD = 3.0


@pytest.fixture
async def digests(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    settings = make_settings(tmp_path / "herald", digest_period_seconds=PERIOD)
    queue = f"digest-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        yield Harness(HeraldClient(temporal_env.client, queue, FAST_POLICY), runtime, settings)


async def user_with_hourly_digest(h: Harness) -> str:
    user = f"user-{uuid.uuid4().hex[:8]}"
    await h.store.users.put_contact(user, Contact(email="ada@example.com"))
    await h.store.users.put_preferences(user, Preferences.model_validate({"digest": {"cadence": "hourly"}}))
    return user


def note(user: str, title: str, priority: Priority = Priority.low, agent: str = "coder") -> AgentNotification:
    return AgentNotification(agent_id=agent, user_id=user, title=title, priority=priority, channels=[ChannelName.email])


def digest_handle(h: Harness, user: str) -> WorkflowHandle[DigestWorkflow, None]:
    return h.client.temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}")


def digest_emails(h: Harness) -> list[dict[str, object]]:
    folder = h.outbox("email")
    files = sorted(folder.glob("digest-*.json")) if folder.exists() else []
    return [json.loads(f.read_text()) for f in files]


async def wait_for_digests(h: Harness, count: int, timeout: float = 20) -> list[dict[str, object]]:
    for _ in range(int(timeout / 0.1)):
        emails = digest_emails(h)
        if len(emails) >= count:
            return emails
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} digest email(s), found {len(digest_emails(h))}")


async def test_three_low_items_make_one_email_and_critical_goes_straight_through(digests: Harness) -> None:
    h = digests
    user = await user_with_hourly_digest(h)
    handles = [await h.client.notify(note(user, f"low item {i}")) for i in range(3)]
    outcomes = [await handle.outcome() for handle in handles]
    assert all(o.status is NotificationStatus.digested for o in outcomes)
    urgent = await (await h.client.notify(note(user, "prod down", Priority.critical))).outcome()
    assert urgent.status is not NotificationStatus.digested

    [email] = await wait_for_digests(h, 1)
    body = json.dumps(email)
    assert all(f"low item {i}" in body for i in range(3)) and "prod down" not in body
    assert "Your digest: 3 notifications from 1 agent" in body
    digest_id = str(email["notification_id"])
    # Each digested notification says which digest carried it.
    for handle in handles:
        stored = await h.store.notifications.get_outcome(handle.notification_id)
        assert stored is not None and stored.digest_id == digest_id
    digest = await h.client.get_handle(digest_id).outcome()
    assert digest.agent_id == DIGEST_AGENT and digest.status is NotificationStatus.delivered

    # An empty period sends nothing: the workflow waits for the next item without a timer.
    await asyncio.sleep(PERIOD * 1.5)
    assert len(digest_emails(h)) == 1
    assert await digest_handle(h, user).query(DigestWorkflow.pending) == []


async def test_worker_sigkill_mid_period_loses_nothing(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A `herald worker` process killed with SIGKILL while the digest holds items: a new one sends them all,
    in one email counted at the SendGrid fake (not in Herald's own outbox).

    It used to shut an in-process worker down gracefully, and with the 3-second test period a boundary could
    fall inside the test and send "before 0" early (1 run in 40). Now the digest is daily at 03:00, so no
    boundary is crossed while the test runs, and the worker is a real process that dies mid-period.
    """
    queue = f"restart-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "herald"
    settings = make_settings(home)
    sendgrid = FakeSendGrid()
    server, task, sendgrid.port = await start_fake(sendgrid)
    env = herald_env(
        home,
        temporal_env.client.service_client.config.target_host,
        queue,
        HERALD_DATABASE_URL=settings.resolved_database_url,
        SENDGRID_API_KEY="SG.digest-restart",
        SENDGRID_API_HOST=sendgrid.host,
        HERALD_EMAIL_FROM="herald@example.com",  # SendGrid refuses the default herald@localhost
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    try:
        async with open_runtime(settings) as runtime:
            h = Harness(HeraldClient(temporal_env.client, queue, FAST_POLICY), runtime, settings)
            user = await user_with_hourly_digest(h)
            prefs = Preferences.model_validate({"digest": {"cadence": "daily", "hour": 3}})
            await h.store.users.put_preferences(user, prefs)
            try:
                await worker.start()
                for i in range(2):
                    outcome = await (await h.client.notify(note(user, f"before {i}"))).outcome()
                    assert outcome.status is NotificationStatus.digested
                await worker.kill()
                await worker.start()  # a new process: everything the digest held is in Temporal, not in the old one
                after = await (await h.client.notify(note(user, "after"))).outcome()
                assert after.status is NotificationStatus.digested
                handle = digest_handle(h, user)
                assert [i.title for i in await handle.query(DigestWorkflow.pending)] == [
                    "before 0",
                    "before 1",
                    "after",
                ]
                assert sendgrid.requests == [], "nothing sent before the flush"
                digest_id = (await handle.execute_update(DigestWorkflow.flush)).digest_id
                digest = await h.client.get_handle(digest_id).outcome()
            finally:
                await worker.kill()
                await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
    finally:
        server.should_exit = True
        await task
    assert digest.status is NotificationStatus.delivered
    [mail] = sendgrid.requests
    assert mail.path == MAIL_SEND_PATH and mail.problems == []
    personalization = mail.json()["personalizations"][0]
    assert personalization["custom_args"]["idempotency_key"] == f"notification/{digest_id}/email"
    assert personalization["to"] == [{"email": "ada@example.com"}]
    assert all(title in json.dumps(mail.json()) for title in ("before 0", "before 1", "after"))
    assert digest_emails(h) == [], "sent through SendGrid, not written to the outbox"


async def test_a_repeated_item_is_held_once_and_flush_sends_now(herald: Harness) -> None:
    """On the real daily schedule, its boundary twelve hours away: only the flush sends (with the seconds-long test
    period, a boundary could send the item between the query and the flush, and did once in make flake)."""
    h = herald
    user = await user_with_hourly_digest(h)
    far = (datetime.now(UTC).hour + 12) % 24
    await h.store.users.put_preferences(
        user, Preferences.model_validate({"time_zone": "UTC", "digest": {"cadence": "daily", "hour": far}})
    )
    item: DigestItem = digest_item(note(user, "once"))
    start = DigestStart(user_id=user, policy=FAST_POLICY)
    for _ in range(2):  # a retried signal-with-start
        await h.client.temporal.start_workflow(
            DigestWorkflow.run,
            start,
            id=f"digest/{user}",
            task_queue=h.client.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="add",
            start_signal_args=[item],
        )
    handle = digest_handle(h, user)
    assert [i.notification_id for i in await handle.query(DigestWorkflow.pending)] == [item.notification_id]
    digest_id = (await handle.execute_update(DigestWorkflow.flush)).digest_id
    assert digest_id is not None
    assert (await handle.execute_update(DigestWorkflow.flush)).digest_id is None, "nothing pending, nothing sent"
    [email] = await wait_for_digests(h, 1)
    message = email["message"]
    assert isinstance(message, dict)
    text = message["content"][0]["value"]
    assert text.count("once") == 1


async def test_two_digests_with_the_same_counts_are_both_sent(digests: Harness) -> None:
    """The second used to end `suppressed_duplicate`: both were "Your digest: 1 notification from 1 agent" from
    the digest agent to the same user, so the 300 s content window took the second for a repeat of the first."""
    h = digests
    user = await user_with_hourly_digest(h)
    for index in range(2):
        handle = await h.client.notify(note(user, f"period {index}"))
        assert (await handle.outcome()).status is NotificationStatus.digested
        await wait_for_digests(h, index + 1)  # the period ends and its digest goes out before the next item
    outcomes = [await h.client.get_handle(f.stem).outcome() for f in sorted(h.outbox("email").glob("digest-*.json"))]
    assert [o.status for o in outcomes] == [NotificationStatus.delivered] * 2
    emails = digest_emails(h)
    assert all("Your digest: 1 notification from 1 agent" in json.dumps(e) for e in emails)
    assert (
        sum("period 0" in json.dumps(e) for e in emails) == 1 and sum("period 1" in json.dumps(e) for e in emails) == 1
    )


async def test_a_digest_continues_as_new_mid_period_and_sends_what_was_pending(herald: Harness) -> None:
    """It never used to continue as new before its boundary: a daily digest's run kept every item's signal in one
    history. Now a run continues as new after `items_per_run` items (or when the server suggests it), carrying
    the pending items and the boundary, and the digest still sends them all."""
    h = herald
    user = f"user-{uuid.uuid4().hex[:8]}"
    await h.store.users.put_contact(user, Contact(email="ada@example.com"))
    hour = (datetime.now(UTC).hour + 12) % 24  # the boundary is hours away: only a flush sends
    await h.store.users.put_preferences(
        user, Preferences.model_validate({"digest": {"cadence": "daily", "hour": hour}})
    )
    await h.client.temporal.start_workflow(
        DigestWorkflow.run,
        DigestStart(user_id=user, policy=FAST_POLICY, items_per_run=2),
        id=f"digest/{user}",
        task_queue=h.client.task_queue,
    )
    titles = [f"item {i}" for i in range(5)]
    for title in titles:
        assert (await (await h.client.notify(note(user, title))).outcome()).status is NotificationStatus.digested
    handle = digest_handle(h, user)
    for _ in range(100):
        pending = await handle.query(DigestWorkflow.pending)
        if len(pending) == len(titles):
            break
        await asyncio.sleep(0.1)
    assert sorted(i.title for i in pending) == titles
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id, "the run holding the items was continued as new"
    digest_id = (await handle.execute_update(DigestWorkflow.flush)).digest_id
    assert digest_id is not None
    [email] = await wait_for_digests(h, 1)
    assert all(title in json.dumps(email) for title in titles)
    assert (await h.client.get_handle(digest_id).outcome()).status is NotificationStatus.delivered
