"""Throttling on the real Temporal dev server: over max_per_hour the rest go to the digest (or, without one, into one
"N more" message at the window's end), a critical one still goes out and counts for nothing, and a channel over
its own limit is left out while the others deliver."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from herald.domain import search
from herald.domain.throttle import summary_workflow_id
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    DigestFlush,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
    notification_workflow_id,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness, make_settings
from tests.herald.test_metrics import Delta
from tests.workflows.test_search_attributes import details, found
from worker import create_worker, open_runtime
from workflows.digest import DigestWorkflow
from workflows.throttle import ThrottleSummaryWorkflow

EMAIL, SMS = ChannelName.email, ChannelName.sms
# The clock hour could turn between two notifications of one test: a window of ~31 years (counted from the epoch,
# as the hour is) cannot, so each test's notifications share a window and the counts are exact.
LONG_WINDOW = 1e9
# The summary test waits for its window to end: seconds, long enough that its burst lands in at most two windows.
SHORT_WINDOW = 6.0


async def harness(temporal_env: WorkflowEnvironment, tmp_path: Path, window: float) -> AsyncIterator[Harness]:
    settings = make_settings(tmp_path / "herald", throttle_window_seconds=window)
    queue = f"throttle-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        yield Harness(HeraldClient(temporal_env.client, queue, FAST_POLICY), runtime, settings)


@pytest.fixture
async def throttled(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in harness(temporal_env, tmp_path, LONG_WINDOW):
        yield h


@pytest.fixture
async def short_windows(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in harness(temporal_env, tmp_path, SHORT_WINDOW):
        yield h


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def person(h: Harness, preferences: dict[str, Any]) -> str:
    user = unique("ada")
    await h.store.users.put_contact(user, Contact(email="ada@example.com", phone="+14155550100"))
    await h.store.users.put_preferences(user, Preferences.model_validate(preferences))
    return user


def note(agent: str, user: str, title: str, **fields: Any) -> AgentNotification:
    values: dict[str, Any] = {"agent_id": agent, "user_id": user, "title": title, "channels": [EMAIL]}
    values.update(fields)
    return AgentNotification(**values)


def outbox(h: Harness, channel: str, notification_id: str) -> dict[str, Any] | None:
    path = h.outbox(channel) / f"{notification_id}.json"
    return json.loads(path.read_text()) if path.exists() else None


async def send_all(h: Harness, notes: list[AgentNotification]) -> list[NotificationOutcome]:
    handles = await asyncio.gather(*(h.client.notify(n) for n in notes))
    return list(await asyncio.gather(*(handle.outcome() for handle in handles)))


async def test_a_limit_of_two_sends_two_and_the_rest_reach_the_digest_which_lists_them(throttled: Harness) -> None:
    h, agent = throttled, unique("deploy-bot")
    user = await person(h, {"default": {"max_per_hour": 2}, "digest": {"cadence": "hourly"}})
    counted = Delta(("herald_notifications_total", {"status": "throttled", "priority": "medium"}))

    outcomes = await send_all(h, [note(agent, user, f"build {i} finished") for i in range(5)])  # all at once

    by_status = {s: [o for o in outcomes if o.status is s] for s in NotificationStatus}
    sent, held = by_status[NotificationStatus.delivered], by_status[NotificationStatus.throttled]
    assert (len(sent), len(held)) == (2, 3), [o.status for o in outcomes]
    for o in sent:
        assert outbox(h, "email", o.notification_id) is not None
    for o in held:
        assert o.channels == {} and outbox(h, "email", o.notification_id) is None
    assert counted() == [3.0]
    # Ops find them in the Temporal UI by HeraldStatus, and the details say why.
    temporal = h.client.temporal
    query = f"HeraldAgentId='{agent}' AND HeraldStatus='throttled'"
    ids = {notification_workflow_id(o.notification_id) for o in held}
    assert await found(temporal, query, ids) == ids
    assert await details(temporal.get_workflow_handle(next(iter(ids)))) == (
        f"**throttled**\nover max_per_hour from {agent}"
    )

    # The digest holds exactly the throttled ones, and its email lists each.
    digest = temporal.get_workflow_handle_for(DigestWorkflow.run, f"digest/{user}")
    assert sorted(i.notification_id for i in await digest.query(DigestWorkflow.pending)) == sorted(
        o.notification_id for o in held
    )
    flushed: DigestFlush = await digest.execute_update(DigestWorkflow.flush)
    assert flushed.digest_id is not None
    email_outcome = await h.client.get_handle(flushed.digest_id).outcome()
    assert email_outcome.status is NotificationStatus.delivered
    email = outbox(h, "email", flushed.digest_id)
    assert email is not None
    text = json.dumps(email)
    titles = {o.notification_id: f"build {i} finished" for i, o in enumerate(outcomes)}
    assert all(titles[o.notification_id] in text for o in held)
    assert not any(titles[o.notification_id] in text for o in sent)
    recorded = await h.store.notifications.get_outcome(held[0].notification_id)
    assert recorded is not None and recorded.status is NotificationStatus.throttled
    assert recorded.digest_id == flushed.digest_id


async def test_a_critical_one_beyond_the_limit_is_still_delivered_and_counts_for_nothing(throttled: Harness) -> None:
    h, agent = throttled, unique("pager")
    user = await person(h, {"default": {"max_per_hour": 1}, "digest": {"cadence": "hourly"}})

    first = await (await h.client.notify(note(agent, user, "deploy started"))).outcome()
    critical = await (
        await h.client.notify(note(agent, user, "prod down", priority=Priority.critical, channels=[EMAIL, SMS]))
    ).outcome()
    after = await (await h.client.notify(note(agent, user, "deploy finished"))).outcome()

    assert first.status is NotificationStatus.delivered
    assert critical.status is NotificationStatus.confirmed, critical
    assert set(critical.delivered_channels) == {EMAIL, SMS} and critical.throttled_channels == []
    assert after.status is NotificationStatus.throttled  # the limit's one slot was the first one's


async def test_a_channel_over_its_own_limit_is_left_out_and_the_others_deliver(throttled: Harness) -> None:
    h, agent = throttled, unique("ops-bot")
    user = await person(h, {"default": {"sms": {"max_per_hour": 1}}})
    both = [EMAIL, SMS]

    first = await (
        await h.client.notify(note(agent, user, "disk 91%", priority=Priority.high, channels=both))
    ).outcome()
    second = await (
        await h.client.notify(note(agent, user, "disk 95%", priority=Priority.high, channels=both))
    ).outcome()
    sms_only = await (
        await h.client.notify(note(agent, user, "disk 99%", priority=Priority.high, channels=[SMS]))
    ).outcome()

    assert first.status is NotificationStatus.delivered and set(first.delivered_channels) == {EMAIL, SMS}
    assert second.status is NotificationStatus.delivered
    assert second.channels.keys() == {EMAIL} and second.throttled_channels == [SMS]
    assert outbox(h, "sms", second.notification_id) is None and outbox(h, "email", second.notification_id)
    details_text = await details(
        h.client.temporal.get_workflow_handle(notification_workflow_id(second.notification_id))
    )
    assert "left out, over their max_per_hour: sms" in details_text
    # No channel left: as over the agent's limit. This user has no digest, so it waits for the window's message.
    assert sms_only.status is NotificationStatus.throttled and sms_only.throttled_channels == [SMS]
    recorded = await h.store.notifications.get_outcome(second.notification_id)
    assert recorded is not None and recorded.throttled_channels == [SMS]


async def test_without_a_digest_the_rest_are_counted_into_one_n_more_message_at_the_windows_end(
    short_windows: Harness,
) -> None:
    h, agent = short_windows, unique("chatty")
    user = await person(h, {"default": {"max_per_hour": 1}})

    outcomes = await send_all(h, [note(agent, user, f"tick {i}") for i in range(3)])

    held = [o for o in outcomes if o.status is NotificationStatus.throttled]
    sent = [o for o in outcomes if o.status is NotificationStatus.delivered]
    # Three at once under a limit of one: however a window's end falls among them, at least one is held.
    assert held and len(sent) + len(held) == 3 and len(sent) <= 2, [o.status for o in outcomes]
    temporal = h.client.temporal
    summary = temporal.get_workflow_handle_for(ThrottleSummaryWorkflow.run, summary_workflow_id(user, agent))
    described = await summary.describe()
    assert described.typed_search_attributes.get(search.USER_ID) == user
    await summary.result()  # the window ended: it sent its message and ended (following any continue-as-new)

    recorded = [await h.store.notifications.get_outcome(o.notification_id) for o in held]
    assert all(r is not None and r.status is NotificationStatus.throttled and r.digest_id for r in recorded)
    summary_ids = {r.digest_id for r in recorded if r is not None and r.digest_id is not None}
    assert 1 <= len(summary_ids) <= 2  # one message per window that held any
    for summary_id in summary_ids:
        message = await h.client.get_handle(summary_id).outcome()
        assert message.status is NotificationStatus.delivered and message.agent_id == agent
        email = outbox(h, "email", summary_id)
        assert email is not None
        carried = [o for o, r in zip(held, recorded, strict=True) if r is not None and r.digest_id == summary_id]
        text = json.dumps(email)
        assert f"{len(carried)} more from {agent}" in text
        titles = {o.notification_id: f"tick {i}" for i, o in enumerate(outcomes)}
        assert all(titles[o.notification_id] in text for o in carried)
