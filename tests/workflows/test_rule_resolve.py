"""A rule with `resolve: true`, on the real dev server: it fires from an event, and a later event that makes its
condition false (for the same rendered dedup_key) resolves what it fired, through the agent's monitor."""

from __future__ import annotations

import uuid

from herald.domain import resolve
from herald.models import ChannelName, ChannelStatus, Contact, NotificationStatus, ResolveEndedResult, TriggerRule
from herald.services.rule_cache import RuleCache
from tests.conftest import Harness
from tests.fakes.http import FakeHTTPServer
from tests.workflows.test_emit import monitor_exists, rules
from tests.workflows.test_resolve import eventually, history_has, slow_client


async def disk_full_rule(herald: Harness, agent: str, user: str) -> tuple[str, RuleCache]:
    """`disk_used > 0.9` per host, to `user` by webhook, with `resolve: true` and no cooldown (a resolving rule still
    goes through the monitor); its name and the rule cache to emit with."""
    name = f"disk-full-{agent}"
    cache = await rules(
        herald,
        TriggerRule(
            name=name,
            agent_id=agent,
            condition="disk_used > 0.9",
            channels=[ChannelName.webhook],
            user_ids=[user],
            title="Disk {{ disk_used }} on {{ host }}",
            dedup_key="{{ host }}",
            cooldown_seconds=0,
            resolve=True,
        ),
    )
    return name, cache


async def test_a_resolving_rule_fires_then_resolves_when_an_event_clears_it(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    agent, user = f"disk-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:6]}"
    # The webhook answers 503 first: the notification waits an hour for its retry, so it is open when the event
    # that clears the rule comes.
    url = fake_http.script(f"/rule-resolve/{user}", 503, 200)
    await herald.store.users.put_contact(user, Contact(webhook_url=url))
    name, cache = await disk_full_rule(herald, agent, user)
    client = slow_client(herald)

    fired = await client.emit(agent, {"disk_used": 0.95, "host": "db-1"}, rules=cache)
    [firing] = fired.fired
    [notification_id] = firing.notification_ids
    assert firing.rule == name and fired.resolved == []
    assert await monitor_exists(herald, agent), "a resolving rule goes through the monitor, which remembers it"
    workflow = herald.client.temporal.get_workflow_handle(f"notification/{notification_id}")
    await eventually(history_has(workflow, "timer_started_event_attributes"), "the webhook's retry waiting")

    # Not clearing: an event without the condition's metric (a heartbeat), and the condition false for another host.
    heartbeat = await client.emit(agent, {"heartbeat": 1}, rules=cache)
    assert heartbeat.resolved == [] and heartbeat.fired == []
    other_host = await client.emit(agent, {"disk_used": 0.5, "host": "db-2"}, rules=cache)
    assert other_host.resolved == []
    assert (await client.status(notification_id)).status is NotificationStatus.pending

    cleared = await client.emit(agent, {"disk_used": 0.5, "host": "db-1"}, rules=cache)
    assert [(r.rule, r.notification_ids) for r in cleared.resolved] == [(name, [notification_id])]
    outcome = await client.get_handle(notification_id).outcome()
    assert outcome.status is NotificationStatus.resolved
    assert outcome.resolved is not None and outcome.resolved.by == f"rule:{name}"
    assert outcome.channels[ChannelName.webhook].status is ChannelStatus.stopped
    assert len(fake_http.received(f"/rule-resolve/{user}")) == 1, "the retry never went out"

    again = await client.emit(agent, {"disk_used": 0.4, "host": "db-1"}, rules=cache)
    assert again.resolved == [], "what a clearing event resolved is forgotten"


async def test_a_resolving_rule_resolves_what_it_fired_after_it_was_delivered(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """The commoner case: the alert was delivered and its workflow completed before the event that clears it."""
    agent, user = f"disk-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:6]}"
    url = fake_http.script(f"/rule-resolve-delivered/{user}", 200)
    await herald.store.users.put_contact(user, Contact(webhook_url=url))
    name, cache = await disk_full_rule(herald, agent, user)
    client = slow_client(herald)
    fired = await client.emit(agent, {"disk_used": 0.95, "host": "db-1"}, rules=cache)
    [notification_id] = fired.fired[0].notification_ids
    delivered = await client.get_handle(notification_id).outcome()
    assert delivered.status is NotificationStatus.delivered

    cleared = await client.emit(agent, {"disk_used": 0.5, "host": "db-1"}, rules=cache)
    assert [(r.rule, r.notification_ids) for r in cleared.resolved] == [(name, [notification_id])]
    run = herald.client.temporal.get_workflow_handle(
        resolve.resolve_ended_id(notification_id), result_type=ResolveEndedResult
    )
    assert (await run.result()).resolved
    recorded = await herald.store.notifications.get_outcome(notification_id)
    assert recorded is not None and recorded.status is NotificationStatus.resolved
    assert recorded.resolved is not None and recorded.resolved.by == f"rule:{name}"
    assert recorded.channels[ChannelName.webhook].status is ChannelStatus.delivered
    assert len(fake_http.received(f"/rule-resolve-delivered/{user}")) == 1


async def test_a_rule_without_resolve_and_without_cooldown_skips_the_monitor(herald: Harness) -> None:
    agent, user = f"disk-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    cache = await rules(
        herald,
        TriggerRule(
            name=f"plain-{agent}",
            agent_id=agent,
            condition="disk_used > 0.9",
            channels=[ChannelName.email],
            user_ids=[user],
            cooldown_seconds=0,
        ),
    )
    result = await herald.client.emit(agent, {"disk_used": 0.95}, rules=cache)
    assert len(result.fired) == 1
    cleared = await herald.client.emit(agent, {"disk_used": 0.1}, rules=cache)
    assert cleared.resolved == [] and not await monitor_exists(herald, agent)
