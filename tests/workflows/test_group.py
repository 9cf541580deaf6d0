"""Grouping on the real Temporal dev server: notifications of one agent for one user with one group_key reach the
person as one message per batch (workflows/group.py); critical ones never wait. Short waits and intervals (seconds)
keep it fast; nothing asserts how long anything took."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from herald.domain.grouping import group_workflow_id
from herald.models import (
    AgentNotification,
    ChannelName,
    Contact,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness, make_settings
from tests.faults.procs import eventually, herald_env, herald_worker
from tests.herald.test_metrics import Delta
from tests.workflows.test_search_attributes import details
from worker import open_runtime
from workflows.group import GroupWorkflow

EMAIL = ChannelName.email
WAIT, INTERVAL = 5, 5  # long enough for a burst to land in one batch on a busy machine


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def person(h: Harness) -> str:
    user = unique("ada")
    await h.store.users.put_contact(user, Contact(email="ada@example.com"))
    return user


def note(agent: str, user: str, title: str, **fields: Any) -> AgentNotification:
    values: dict[str, Any] = {
        "agent_id": agent,
        "user_id": user,
        "title": title,
        "channels": [EMAIL],
        "group_key": "checkout/eu",
        "group_wait_seconds": WAIT,
        "group_interval_seconds": INTERVAL,
    }
    values.update(fields)
    return AgentNotification(**values)


def emails(h: Harness) -> dict[str, dict[str, Any]]:
    folder = h.outbox("email")
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")} if folder.exists() else {}


async def recorded_delivery(h: Harness, notification_id: str) -> NotificationOutcome:
    """The member's recorded outcome once the group's message is on it."""
    found: list[NotificationOutcome] = []

    async def carried() -> bool:
        outcome = await h.store.notifications.get_outcome(notification_id)
        if outcome is not None and outcome.group_delivery is not None:
            found.append(outcome)
            return True
        return False

    await eventually(carried, f"the group's message on {notification_id}")
    return found[-1]


async def test_twelve_with_one_key_reach_the_person_as_one_message_and_a_thirteenth_later_as_a_second(
    herald: Harness,
) -> None:
    h, agent = herald, unique("shop-bot")
    user = await person(h)
    counted = Delta(("herald_notifications_total", {"status": "grouped", "priority": "medium"}))
    sizes = Delta(("herald_group_size_count", {}), ("herald_group_size_sum", {}))

    handles = await asyncio.gather(*(h.client.notify(note(agent, user, f"checkout error {i}")) for i in range(12)))
    outcomes = list(await asyncio.gather(*(handle.outcome() for handle in handles)))

    group_id = group_workflow_id(user, agent, "checkout/eu")
    assert {o.status for o in outcomes} == {NotificationStatus.grouped}
    assert {o.group_id for o in outcomes} == {group_id}
    assert all(o.channels == {} for o in outcomes)  # nothing sent on its own
    assert counted() == [12.0]
    assert (await details(h.client.temporal.get_workflow_handle(handles[0].workflow_id))).startswith(
        f"**grouped**\ngrouped in {group_id}"
    )

    first = [await recorded_delivery(h, o.notification_id) for o in outcomes]
    messages = {o.group_delivery.notification_id for o in first if o.group_delivery is not None}
    assert len(messages) == 1, "twelve members, one message"
    message_id = messages.pop()
    sent = emails(h)
    assert set(sent) == {message_id}
    text = json.dumps(sent[message_id])
    assert "12 notifications: checkout error" in text
    assert all(f"checkout error {i}" in text for i in range(12))
    for o in first:
        assert o.status is NotificationStatus.grouped and o.group_id == group_id
        assert o.group_delivery is not None and o.group_delivery.size == 12
        assert o.group_delivery.status is NotificationStatus.delivered
        assert o.delivered_channels == [EMAIL]  # the group's delivery is the member's
    message = await h.client.get_handle(message_id).outcome()
    assert message.status is NotificationStatus.delivered and message.delivered_channels == [EMAIL]

    # A thirteenth, after the first message: the next interval's message, a second one.
    late = await (await h.client.notify(note(agent, user, "checkout error 12"))).outcome()
    assert late.status is NotificationStatus.grouped and late.group_id == group_id
    second = await recorded_delivery(h, late.notification_id)
    assert second.group_delivery is not None and second.group_delivery.size == 1
    assert second.group_delivery.notification_id != message_id
    sent = emails(h)
    assert set(sent) == {message_id, second.group_delivery.notification_id}
    assert "checkout error 12" in json.dumps(sent[second.group_delivery.notification_id])

    # Nobody else came within the interval: the group's workflow ends, nothing left waiting.
    group = h.client.temporal.get_workflow_handle_for(GroupWorkflow.run, group_id)
    await group.result()
    assert set(emails(h)) == {message_id, second.group_delivery.notification_id}
    assert counted() == [13.0] and sizes() == [2.0, 13.0]  # /metrics: the members, and two messages of 12 and 1


async def test_a_critical_one_with_a_group_key_never_waits(herald: Harness) -> None:
    h, agent = herald, unique("pager")
    user = await person(h)
    outcome = await (
        await h.client.notify(note(agent, user, "prod down", priority=Priority.critical, group_wait_seconds=3600))
    ).outcome()
    assert outcome.status is not NotificationStatus.grouped and outcome.group_id is None
    assert EMAIL in outcome.delivered_channels


async def test_other_keys_and_agents_group_apart(herald: Harness) -> None:
    h, agent, other = herald, unique("shop-bot"), unique("ship-bot")
    user = await person(h)
    notes = [
        note(agent, user, "eu 1"),
        note(agent, user, "eu 2"),
        note(agent, user, "us 1", group_key="checkout/us"),
        note(other, user, "eu from another agent"),
    ]
    outcomes = list(await asyncio.gather(*[(await h.client.notify(n)).outcome() for n in notes]))
    assert {o.status for o in outcomes} == {NotificationStatus.grouped}
    carried = [await recorded_delivery(h, o.notification_id) for o in outcomes]
    ids = [c.group_delivery.notification_id for c in carried if c.group_delivery is not None]
    assert ids[0] == ids[1] and len(set(ids)) == 3
    assert [c.group_delivery.size for c in carried if c.group_delivery is not None] == [2, 2, 1, 1]


async def test_a_worker_sigkilled_while_the_group_waits_loses_no_member_and_sends_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A `herald worker` process killed with SIGKILL while the group's timer runs: a new process sends the one
    message with every member, once, and records it on each."""
    queue = f"group-restart-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "herald"
    settings = make_settings(home)
    env = herald_env(
        home,
        temporal_env.client.service_client.config.target_host,
        queue,
        HERALD_DATABASE_URL=settings.resolved_database_url,
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    try:
        async with open_runtime(settings) as runtime:
            h = Harness(HeraldClient(temporal_env.client, queue, FAST_POLICY), runtime, settings)
            agent = unique("shop-bot")
            user = await person(h)
            await worker.start()
            notes = [note(agent, user, f"checkout error {i}", group_wait_seconds=8) for i in range(3)]
            outcomes = [await (await h.client.notify(n)).outcome() for n in notes]
            assert {o.status for o in outcomes} == {NotificationStatus.grouped}
            await worker.kill()
            await worker.start()  # a new process: the members and the timer are in Temporal, not in the old one
            carried = [await recorded_delivery(h, o.notification_id) for o in outcomes]
            group = h.client.temporal.get_workflow_handle_for(
                GroupWorkflow.run, group_workflow_id(user, agent, "checkout/eu")
            )
            await group.result()
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
    [message_id] = {c.group_delivery.notification_id for c in carried if c.group_delivery is not None}
    sent = emails(h)
    assert set(sent) == {message_id}, worker.tail()
    assert all(f"checkout error {i}" in json.dumps(sent[message_id]) for i in range(3))
    assert {c.group_delivery.size for c in carried if c.group_delivery is not None} == {3}


async def test_a_rules_group_key_groups_what_it_fires_per_rendered_key(herald: Harness) -> None:
    from herald.models import TriggerRule
    from herald.services.rule_cache import RuleCache

    h, agent = herald, unique("shop-bot")
    user = await person(h)
    rule = TriggerRule(
        name=unique("checkout-errors"),
        agent_id=agent,
        condition="errors > 0",
        channels=[EMAIL],
        user_ids=[user],
        cooldown_seconds=0,
        title="{{ errors }} errors in {{ region }}",
        group_key="checkout/{{ metrics.region }}",
        group_wait_seconds=WAIT,
        group_interval_seconds=1,
    )
    await h.store.rules.put_rule(rule)
    cache = RuleCache(h.store, refresh_seconds=0.05)
    fired = []
    for errors, region in ((1, "eu"), (2, "eu"), (3, "us")):
        result = await h.client.emit(agent, {"errors": errors, "region": region}, rules=cache)
        [firing] = result.fired
        fired += firing.notification_ids
    outcomes = [await h.client.get_handle(i).outcome() for i in fired]
    assert [o.group_id for o in outcomes] == [
        group_workflow_id(user, agent, "checkout/eu"),
        group_workflow_id(user, agent, "checkout/eu"),
        group_workflow_id(user, agent, "checkout/us"),
    ]
    carried = [await recorded_delivery(h, i) for i in fired]
    sizes = [c.group_delivery.size for c in carried if c.group_delivery is not None]
    assert sizes == [2, 2, 1]
    assert len({c.group_delivery.notification_id for c in carried if c.group_delivery is not None}) == 2


async def test_a_snoozed_agents_notification_is_not_grouped_and_sent_nowhere(herald: Harness) -> None:
    from datetime import UTC, datetime, timedelta

    from herald.models import Snooze

    h, agent = herald, unique("shop-bot")
    user = await person(h)
    until = datetime.now(UTC) + timedelta(hours=1)
    await h.store.answers.put_snooze(Snooze(user_id=user, scope=f"agent:{agent}", until=until))
    outcome = await (await h.client.notify(note(agent, user, "checkout error"))).outcome()
    assert outcome.status is NotificationStatus.no_channel and outcome.group_id is None
    assert outcome.snoozed_until is not None and emails(h) == {}


async def test_one_with_no_channel_of_its_own_is_not_grouped(herald: Harness) -> None:
    h, agent = herald, unique("shop-bot")
    user = await person(h)
    await h.store.users.put_preferences(user, Preferences.model_validate({"agents": {agent: {"email": False}}}))
    outcome = await (await h.client.notify(note(agent, user, "checkout error"))).outcome()
    assert outcome.status is NotificationStatus.no_channel and outcome.group_id is None


async def test_a_member_handed_over_again_after_its_message_is_not_sent_twice(herald: Harness) -> None:
    from herald.domain.grouping import member_of

    h, agent = herald, unique("shop-bot")
    user = await person(h)
    first = note(agent, user, "checkout error", group_wait_seconds=0)
    assert (await (await h.client.notify(first)).outcome()).status is NotificationStatus.grouped
    carried = await recorded_delivery(h, first.notification_id)
    group = h.client.temporal.get_workflow_handle_for(GroupWorkflow.run, group_workflow_id(user, agent, "checkout/eu"))
    await group.signal(GroupWorkflow.add, member_of(first))  # a retried hand-over, after the message went
    assert await group.query(GroupWorkflow.pending) == []
    await group.result()
    assert carried.group_delivery is not None and set(emails(h)) == {carried.group_delivery.notification_id}
