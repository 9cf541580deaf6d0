"""Silences on the real Temporal dev server: a notification a silence holds ends `silenced` and reaches nobody
(findable by HeraldStatus, counted in the metrics); one outside the silence's window, or critical under a silence
that stops at high, is delivered."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from herald.domain import search
from herald.domain.silences import new_silence
from herald.models import (
    Action,
    AgentNotification,
    ChannelName,
    Contact,
    NotificationStatus,
    Silence,
    SilenceInput,
    utcnow,
)
from tests.conftest import WEBHOOK_SECRET, Harness
from tests.fakes.http import FakeHTTPServer
from tests.herald.test_metrics import Delta
from tests.workflows.test_search_attributes import details, found

EMAIL = ChannelName.email


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def outbox_ids(herald: Harness) -> set[str]:
    directory = herald.outbox("email")
    return (
        {json.loads(p.read_text())["notification_id"] for p in directory.glob("*.json")}
        if directory.exists()
        else set()
    )


async def silence(herald: Harness, **fields: Any) -> Silence:
    now = utcnow()
    values: dict[str, Any] = {"ends_at": now + timedelta(hours=1), "comment": "maintenance window"}
    values.update(fields)
    made = new_silence(SilenceInput.model_validate(values), "admin", now)
    await herald.store.silences.put_silence(made)
    return made


def note(agent: str, user: str, **fields: Any) -> AgentNotification:
    values: dict[str, Any] = {"agent_id": agent, "user_id": user, "title": "Disk 91%", "channels": [EMAIL]}
    values.update(fields)
    return AgentNotification(**values)


async def test_a_matching_silence_holds_the_notification_and_nothing_is_sent(herald: Harness) -> None:
    agent, user = unique("agent"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    held = await silence(herald, matchers={"agent_id": agent, "user_id": user})
    counted = Delta(("herald_notifications_total", {"status": "silenced", "priority": "medium"}))

    handle = await herald.client.notify(note(agent, user))
    outcome = await handle.outcome()

    assert outcome.status is NotificationStatus.silenced and outcome.silence_id == held.silence_id
    assert outcome.channels == {}
    assert handle.notification_id not in outbox_ids(herald)
    assert await herald.store.notifications.attempts(handle.notification_id) == []
    recorded = await herald.store.notifications.get_outcome(handle.notification_id)
    assert recorded is not None and recorded.status is NotificationStatus.silenced
    assert recorded.silence_id == held.silence_id
    assert counted() == [1.0]
    # Ops find it in the Temporal UI by HeraldStatus, and its details name the silence.
    temporal = herald.client.temporal
    workflow = temporal.get_workflow_handle(handle.workflow_id)
    assert (await workflow.describe()).typed_search_attributes.get(search.STATUS) == "silenced"
    query = f"HeraldAgentId='{agent}' AND HeraldStatus='silenced'"
    assert await found(temporal, query, {handle.workflow_id}) == {handle.workflow_id}
    assert await details(workflow) == f"**silenced**\nsilenced by {held.silence_id}"

    # Another agent's notification to the same user is not this silence's.
    other = await (await herald.client.notify(note(unique("other"), user))).outcome()
    assert other.status is NotificationStatus.delivered and other.silence_id is None


async def test_a_silence_that_has_ended_or_not_started_holds_nothing(herald: Harness) -> None:
    agent, user = unique("agent"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    ended = await silence(herald, matchers={"agent_id": agent})
    await herald.store.silences.expire_silence(ended.silence_id, utcnow())
    now = utcnow()
    await silence(
        herald, matchers={"agent_id": agent}, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )

    handle = await herald.client.notify(note(agent, user))
    outcome = await handle.outcome()

    assert outcome.status is NotificationStatus.delivered and outcome.silence_id is None
    assert handle.notification_id in outbox_ids(herald)


async def test_a_silence_cannot_hold_a_critical_notification_unless_its_max_priority_is_critical(
    herald: Harness,
) -> None:
    agent, user, other_user = unique("agent"), unique("ada"), unique("bob")
    for u in (user, other_user):
        await herald.store.users.put_contact(u, Contact(email=f"{u}@example.com"))
    await silence(herald, matchers={"agent_id": agent, "user_id": user})  # max_priority: high, the default
    critical = await silence(herald, matchers={"agent_id": agent, "user_id": other_user, "max_priority": "critical"})

    through = await herald.client.notify(note(agent, user, priority="critical", title="prod down"))
    held = await herald.client.notify(note(agent, other_user, priority="critical", title="prod down"))

    got_through = await through.outcome()
    assert got_through.status is not NotificationStatus.silenced and got_through.silence_id is None
    assert EMAIL in got_through.delivered_channels and through.notification_id in outbox_ids(herald)
    silenced = await held.outcome()
    assert silenced.status is NotificationStatus.silenced and silenced.silence_id == critical.silence_id
    assert held.notification_id not in outbox_ids(herald)


async def test_a_silenced_question_asks_nobody_and_its_agent_is_told(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    agent, user = unique("agent"), unique("ada")
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    held = await silence(herald, matchers={"user_id": user})
    path = f"/silenced-callback/{user}"
    url = fake_http.script(path, 200)
    question = note(
        agent,
        user,
        title="Ship it?",
        actions=[Action(id="yes", label="Yes")],
        respond_by=utcnow() + timedelta(minutes=10),
        callback_url=url,
    )

    outcome = await (await herald.client.notify(question)).outcome()

    assert outcome.status is NotificationStatus.silenced and outcome.silence_id == held.silence_id
    assert outcome.answer is None and question.notification_id not in outbox_ids(herald)
    [call] = fake_http.received(path)
    event = Webhook(WEBHOOK_SECRET).verify(call.body, dict(call.headers.items()))
    assert event["type"] == "notification.silenced"
    assert event["data"]["notification_id"] == question.notification_id
