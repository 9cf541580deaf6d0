"""Resolving what was already delivered, on the real dev server against the providers' loopback fakes: the
notification's workflow has completed `delivered` when its agent resolves it, so a ResolveEndedWorkflow
(`resolve/<notification_id>`) records it `resolved` and tells the person's live inbox (the `resolved` frame), the
browser that showed it (a Web Push with the same Topic) and, as `notify_resolved` allows, their email.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from herald.adapters.channels.webpush import topic
from herald.api.views import load_notification
from herald.domain import resolve
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Priority,
    ResolveEndedResult,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness, acking
from tests.fakes.webpush import Browser
from tests.workflows.test_channels_e2e import Providers, fakes  # noqa: F401 (fixture)
from tests.workflows.test_chat_answers import MEMBER, Chat, chat  # noqa: F401 (fixture)
from tests.workflows.test_resolve import eventually
from worker import create_worker, open_runtime

TITLE = "Disk 95% on db-1"
KEY = "disk-full/db-1"


@pytest.fixture
async def delivered(temporal_env: WorkflowEnvironment, fakes: Providers) -> AsyncIterator[Harness]:  # noqa: F811
    """A worker whose channels are the real provider clients against the fakes, with its runtime (the push hub)."""
    task_queue = f"resolved-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(fakes.settings) as runtime,
        create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
    ):
        yield Harness(HeraldClient(temporal_env.client, task_queue, FAST_POLICY), runtime, fakes.settings)


async def deliver(h: Harness, fakes: Providers, priority: Priority) -> tuple[AgentNotification, Browser, str]:  # noqa: F811
    """An alert delivered by Web Push (no inbox open) and email, its workflow completed, and listed as such."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    await h.store.users.put_contact(user, Contact(email="ada@example.com"))
    browser, endpoint = Browser(), fakes.push.endpoint()
    await h.store.users.add_push_subscription(user, browser.subscription(endpoint))
    n = AgentNotification(
        agent_id=f"disk-{uuid.uuid4().hex[:8]}",
        user_id=user,
        title=TITLE,
        priority=priority,
        channels=[ChannelName.push, ChannelName.email],
        dedup_key=KEY,
    )
    outcome = await (await h.client.notify(n)).outcome()
    assert outcome.status is NotificationStatus.delivered
    assert {c: r.status for c, r in outcome.channels.items()} == {
        ChannelName.push: ChannelStatus.delivered,
        ChannelName.email: ChannelStatus.delivered,
    }

    async def listed() -> bool:
        return (await h.client.temporal.count_workflows(resolve.ended_query(n.agent_id, KEY))).count == 1

    await eventually(listed, "the completed notification in Temporal's visibility")
    return n, browser, endpoint


async def resolve_live(h: Harness, n: AgentNotification) -> tuple[Any, ResolveEndedResult, list[dict[str, Any]]]:
    """Resolve `n` while the person has the inbox open; the result, the resolve run's result, the frames seen."""
    frames: list[dict[str, Any]] = []
    with h.runtime.hub.connect(n.user_id) as connection:
        acker = asyncio.create_task(acking(connection, frames))
        try:
            result = await h.client.resolve(n.agent_id, KEY)
            run = h.client.temporal.get_workflow_handle(
                resolve.resolve_ended_id(n.notification_id), result_type=ResolveEndedResult
            )
            ended = await run.result()
            await eventually(lambda: any(f["type"] == "resolved" for f in frames), "the resolved frame")
        finally:
            acker.cancel()
    return result, ended, frames


async def test_a_delivered_alert_resolved_later_is_told_everywhere_it_was_delivered(
    delivered: Harness,
    fakes: Providers,  # noqa: F811
) -> None:
    h = delivered
    n, browser, endpoint = await deliver(h, fakes, Priority.high)

    result, ended, frames = await resolve_live(h, n)

    assert result.resolved == [n.notification_id]
    assert result.message == f"resolved 1 open notification of {n.agent_id}"
    assert ended.resolved and ended.reason is None
    # The live inbox: one `resolved` frame for it.
    assert [f for f in frames if f["type"] == "resolved"] == [
        {"type": "resolved", "notification_id": n.notification_id}
    ]
    # Web Push: a second push under the first one's Topic replaces what the browser shows.
    shown, replacing = fakes.push.received(endpoint)
    assert replacing.headers["topic"] == shown.headers["topic"] == topic(f"{n.workflow_id}/push")
    payload = browser.decrypt(replacing.body)
    assert (payload["type"], payload["notification_id"], payload["title"]) == (
        "resolved",
        n.notification_id,
        f"Resolved: {TITLE}",
    )
    # Email, high priority (notify_resolved's default): a short "Resolved:" under a key of its own.
    subjects = [r.json()["subject"] for r in fakes.sendgrid.requests]
    assert subjects == [f"[HIGH] {TITLE}", f"[HIGH] Resolved: {TITLE}"]
    keys = [r.json()["personalizations"][0]["custom_args"]["idempotency_key"] for r in fakes.sendgrid.requests]
    assert keys[1] == f"{n.workflow_id}/email/resolved"
    # What GET /v1/notifications/{id} reads: resolved, by whom, the channels as they were delivered.
    view = await load_notification(h.store, h.client, n.notification_id)
    assert view is not None and view.status is NotificationStatus.resolved
    recorded = await h.store.notifications.get_outcome(n.notification_id)
    assert recorded is not None and recorded.resolved is not None
    assert recorded.resolved.by == f"agent:{n.agent_id}"
    assert recorded.channels[ChannelName.push].status is ChannelStatus.delivered

    # A second resolve is a no-op, and says so: nothing more is sent.
    again = await h.client.resolve(n.agent_id, KEY)
    assert again.resolved == []
    assert again.message.startswith("nothing to resolve")
    assert len(fakes.sendgrid.requests) == 2 and len(fakes.push.received(endpoint)) == 2


async def test_a_delivered_low_alert_resolved_later_sends_no_email(
    delivered: Harness,
    fakes: Providers,  # noqa: F811
) -> None:
    h = delivered
    n, browser, endpoint = await deliver(h, fakes, Priority.low)

    result, ended, frames = await resolve_live(h, n)

    assert result.resolved == [n.notification_id] and ended.resolved
    assert {"type": "resolved", "notification_id": n.notification_id} in frames
    assert [r.json()["subject"] for r in fakes.sendgrid.requests] == [f"[LOW] {TITLE}"]
    assert ChannelName.email.value not in ended.told
    # Web Push and the inbox are updated whatever the preference: nothing new arrives, what is shown changes.
    assert browser.decrypt(fakes.push.received(endpoint)[-1].body)["type"] == "resolved"
    recorded = await h.store.notifications.get_outcome(n.notification_id)
    assert recorded is not None and recorded.status is NotificationStatus.resolved


async def test_a_delivered_alert_in_slack_and_telegram_resolved_later_is_edited_to_say_resolved(
    chat: Chat,  # noqa: F811
) -> None:
    user, chat_id = f"ada-{uuid.uuid4().hex[:6]}", 4343
    await chat.store.users.put_contact(user, Contact(slack_user_id=MEMBER, telegram_chat_id=chat_id))
    n = AgentNotification(
        agent_id=f"disk-{uuid.uuid4().hex[:8]}",
        user_id=user,
        title=TITLE,
        priority=Priority.high,
        channels=[ChannelName.slack, ChannelName.telegram],
        dedup_key=KEY,
    )
    assert (await (await chat.client.notify(n)).outcome()).status is NotificationStatus.delivered
    assert not chat.slack.calls_to("chat.update") and not chat.telegram.calls_to("editMessageText")

    async def listed() -> bool:
        return (await chat.client.temporal.count_workflows(resolve.ended_query(n.agent_id, KEY))).count == 1

    await eventually(listed, "the completed notification in Temporal's visibility")
    assert (await chat.client.resolve(n.agent_id, KEY)).resolved == [n.notification_id]
    run = chat.client.temporal.get_workflow_handle(
        resolve.resolve_ended_id(n.notification_id), result_type=ResolveEndedResult
    )
    assert (await run.result()).resolved

    [slack_message] = chat.slack.messages.values()
    assert slack_message["text"] == "Resolved"
    [telegram_message] = [m for k, m in chat.telegram.messages.items() if k[0] == chat_id]
    assert "Resolved" in telegram_message["text"]
