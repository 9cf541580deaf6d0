"""Agents emit metrics; rules decide; the monitor (rules with a cooldown) or the client itself (rules without)
fires notifications through the whole pipeline."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.service import RPCError, RPCStatusCode

from herald.domain import search
from herald.domain.events import match_event
from herald.models import AgentEvent, ChannelName, ChannelStatus, Contact, NotificationStatus, Priority, TriggerRule
from herald.services.rule_cache import RuleCache
from tests.conftest import Harness


def agent() -> str:
    return f"agent-{uuid.uuid4().hex[:8]}"


async def rules(herald: Harness, *rules: TriggerRule) -> RuleCache:
    for rule in rules:
        await herald.store.rules.put_rule(rule)
    return RuleCache(herald.store, refresh_seconds=0.05)


async def monitor_exists(herald: Harness, agent_id: str) -> bool:
    try:
        await herald.client.temporal.get_workflow_handle(f"monitor/{agent_id}").describe()
    except RPCError as exc:
        assert exc.status is RPCStatusCode.NOT_FOUND
        return False
    return True


async def test_the_seed_rules_end_to_end(herald: Harness) -> None:
    a, user = agent(), f"user-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    cache = await rules(
        herald,
        TriggerRule(
            name=f"errors-{a}",
            agent_id=a,
            condition="error_rate > 0.05",
            channels=[ChannelName.email],
            priority=Priority.high,
            user_ids=[user],
            title="Error rate {{ error_rate }} on {{ agent_id }}",
            body="rule {{ rule }}",
        ),
        TriggerRule(
            name=f"done-{a}",
            agent_id=a,
            condition="completed == 1",
            channels=[ChannelName.email],
            user_ids=[user],
            title="Job finished on {{ agent_id }}",
        ),
    )
    quiet = await herald.client.emit(a, {"error_rate": 0.01, "completed": 0}, rules=cache)
    assert quiet.fired == [] and quiet.cooled_down == []
    assert not await monitor_exists(herald, a), "an event that matches nothing costs no Temporal work"

    result = await herald.client.emit(a, {"error_rate": 0.07, "completed": 1}, rules=cache)
    fired = {f.rule: f.notification_ids for f in result.fired}
    assert set(fired) == {f"errors-{a}", f"done-{a}"}
    [error_id] = fired[f"errors-{a}"]
    outcome = await herald.client.get_handle(error_id).outcome()
    assert outcome.status is NotificationStatus.delivered
    assert outcome.channels[ChannelName.email].status is ChannelStatus.delivered
    mail = (herald.outbox("email") / f"{error_id}.json").read_text()
    assert f"[HIGH] Error rate 0.07 on {a}" in mail

    # The same metrics again, within the cooldown: reported, not sent.
    again = await herald.client.emit(a, {"error_rate": 0.09, "completed": 1}, rules=cache)
    assert again.fired == []
    assert {c.rule for c in again.cooled_down} == {f"errors-{a}", f"done-{a}"}


async def test_wildcard_rule_fires_for_every_agent_separately(herald: Harness) -> None:
    a, b = agent(), agent()
    name = f"any-{uuid.uuid4().hex[:6]}"
    # Only events carrying this run's marker match, so other tests' events don't trip the wildcard.
    condition = f'marker == "{name}" && cost_usd > 10'
    await herald.store.users.put_contact("ops", Contact(email="ops@example.com"))
    cache = await rules(
        herald,
        TriggerRule(name=name, condition=condition, user_ids=["ops"]),
        TriggerRule(name=f"{name}-now", condition=condition, cooldown_seconds=0, user_ids=["ops"]),
    )
    # Event ids are each agent's own: both agents may well number their events the same way.
    first = await herald.client.emit(a, {"marker": name, "cost_usd": 12}, event_id="evt-1", rules=cache)
    second = await herald.client.emit(b, {"marker": name, "cost_usd": 12.5}, event_id="evt-1", rules=cache)
    assert [f.rule for f in first.fired] == [name, f"{name}-now"]
    assert [f.rule for f in second.fired] == [name, f"{name}-now"], "each agent's monitor keeps its own cooldown"
    assert await monitor_exists(herald, a) and await monitor_exists(herald, b)
    for result, sender in ((first, a), (second, b)):
        for fired in result.fired:
            [nid] = fired.notification_ids
            outcome = await herald.client.get_handle(nid).outcome()
            assert outcome.agent_id == sender, f"{fired.rule} for {sender} sent the other agent's notification"
            assert outcome.status is NotificationStatus.delivered


async def test_missing_metric_means_no_firing(herald: Harness) -> None:
    a = agent()
    cache = await rules(
        herald,
        TriggerRule(name=f"cost-{a}", agent_id=a, condition="has(cost_usd) && cost_usd > 10", user_ids=["ops"]),
        TriggerRule(name=f"latency-{a}", agent_id=a, condition="latency_ms >= 200", user_ids=["ops"]),
    )
    result = await herald.client.emit(a, {"error_rate": 0.5}, rules=cache)
    assert result.fired == [] and result.cooled_down == []
    assert not await monitor_exists(herald, a)


async def test_burst_through_emit_fires_once(herald: Harness) -> None:
    a = agent()
    cache = await rules(
        herald, TriggerRule(name=f"stuck-{a}", agent_id=a, condition="queue_depth > 100", user_ids=["ops"])
    )
    results = await asyncio.gather(*(herald.client.emit(a, {"queue_depth": 500 + i}, rules=cache) for i in range(50)))
    assert sum(len(r.fired) for r in results) == 1
    assert sum(len(r.cooled_down) for r in results) == 49


async def test_bad_event_is_refused_before_anything_runs(herald: Harness) -> None:
    a = agent()
    cache = await rules(herald, TriggerRule(name=f"r-{a}", agent_id=a, condition="x > 1", user_ids=["ops"]))
    with pytest.raises(ValueError, match="metrics"):
        await herald.client.emit(a, {"x": [1, 2]}, rules=cache)  # type: ignore[dict-item]
    assert not await monitor_exists(herald, a)


async def test_a_rule_without_cooldown_fires_every_event_without_a_monitor(herald: Harness) -> None:
    a, user = agent(), f"user-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    cache = await rules(
        herald,
        TriggerRule(
            name=f"done-{a}",
            agent_id=a,
            condition="completed == 1",
            cooldown_seconds=0,
            channels=[ChannelName.email],
            priority=Priority.high,
            user_ids=[user],
            title="Job {{ job }} finished",
        ),
    )
    first = await herald.client.emit(a, {"completed": 1, "job": 1}, rules=cache)
    second = await herald.client.emit(a, {"completed": 1, "job": 2}, rules=cache)
    assert first.cooled_down == [] and second.cooled_down == []
    [(rule, [first_id])] = [(f.rule, f.notification_ids) for f in first.fired]
    [(_, [second_id])] = [(f.rule, f.notification_ids) for f in second.fired]
    assert rule == f"done-{a}" and first_id != second_id, "every distinct event fires again"
    for nid, job in ((first_id, 1), (second_id, 2)):
        handle = herald.client.get_handle(nid)
        assert (await handle.outcome()).status is NotificationStatus.delivered
        # Started as the monitor would start it: the same attributes and summary for ops.
        description = await herald.client.temporal.get_workflow_handle(handle.workflow_id).describe()
        assert description.typed_search_attributes.get(search.AGENT_ID) == a
        assert description.typed_search_attributes.get(search.USER_ID) == user
        assert description.typed_search_attributes.get(search.PRIORITY) == "high"
        assert await description.static_summary() == f"high: Job {job} finished on {a} -> {user}"
    assert not await monitor_exists(herald, a), "a rule without a cooldown needs no monitor"


async def test_a_repeated_event_id_starts_one_notification_without_a_monitor(herald: Harness) -> None:
    a = agent()
    cache = await rules(
        herald,
        TriggerRule(name=f"done-{a}", agent_id=a, condition="completed == 1", cooldown_seconds=0, user_ids=["ops"]),
    )
    event_id = uuid.uuid4().hex
    first = await herald.client.emit(a, {"completed": 1}, event_id=event_id, rules=cache)
    repeat = await herald.client.emit(a, {"completed": 1}, event_id=event_id, rules=cache)  # running or done
    assert repeat == first, "a retried event names the same notifications"
    [nid] = first.fired[0].notification_ids
    handle = herald.client.temporal.get_workflow_handle(f"notification/{nid}")
    run_id = (await handle.describe()).run_id
    await handle.result()
    late = await herald.client.emit(a, {"completed": 1}, event_id=event_id, rules=cache)  # finished by now
    assert late == first
    assert (await handle.describe()).run_id == run_id, "still the one run: a finished notification isn't restarted"
    assert not await monitor_exists(herald, a)


async def test_rules_with_and_without_cooldown_in_one_event(herald: Harness) -> None:
    a = agent()
    # Interleaved by name (the order rules match in), so the merged result must restore the order.
    cache = await rules(
        herald,
        TriggerRule(name=f"a-errors-{a}", agent_id=a, condition="error_rate > 0.05", user_ids=["ops"]),
        TriggerRule(name=f"b-done-{a}", agent_id=a, condition="completed == 1", cooldown_seconds=0, user_ids=["ops"]),
        TriggerRule(name=f"c-slow-{a}", agent_id=a, condition="latency_ms > 200", user_ids=["ops"]),
    )
    metrics = {"error_rate": 0.07, "completed": 1, "latency_ms": 250}
    matched = [f.rule for f in match_event(await cache.book(), AgentEvent(agent_id=a, metrics=metrics))]
    assert matched == [f"a-errors-{a}", f"b-done-{a}", f"c-slow-{a}"]

    first = await herald.client.emit(a, metrics, rules=cache)
    assert [f.rule for f in first.fired] == matched and first.cooled_down == []
    second = await herald.client.emit(a, metrics, rules=cache)
    assert [f.rule for f in second.fired] == [f"b-done-{a}"], "the rule without a cooldown fires again"
    assert [c.rule for c in second.cooled_down] == [f"a-errors-{a}", f"c-slow-{a}"]
    assert second.fired[0].notification_ids != first.fired[1].notification_ids
    for result in (first, second):
        for fired in result.fired:
            for nid in fired.notification_ids:
                assert (await herald.client.get_handle(nid).outcome()).agent_id == a
    assert await monitor_exists(herald, a), "the rules with a cooldown went through the monitor"


async def wait_until_fired(herald: Harness, a: str, metrics: dict[str, int | str], cache: RuleCache) -> list[str]:
    """Emit until the rule's cooldown lets it fire (each held emit reports `cooled_down`, as it should)."""
    for _ in range(100):
        result = await herald.client.emit(a, metrics, rules=cache)
        if result.fired:
            [fired] = result.fired
            return fired.notification_ids
        assert result.cooled_down, "a match is either fired or held by the cooldown"
        await asyncio.sleep(0.2)
    raise AssertionError("the cooldown never ended")


async def test_a_rule_that_fires_after_its_cooldown_delivers_again(herald: Harness) -> None:
    """It used to end `suppressed_duplicate`: the second firing had the first one's title, and the 300 s
    content dedup window outlasted the 1 s cooldown, so the API said "fired" for a notification never sent."""
    a, user = agent(), f"user-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    cache = await rules(
        herald,
        TriggerRule(
            name=f"stuck-{a}",
            agent_id=a,
            condition="queue_depth > 100",
            cooldown_seconds=1,
            channels=[ChannelName.email],
            user_ids=[user],
            title="Queue stuck on {{ agent_id }}",  # the same title every time
        ),
    )
    [first] = await wait_until_fired(herald, a, {"queue_depth": 500}, cache)
    [second] = await wait_until_fired(herald, a, {"queue_depth": 700}, cache)
    assert first != second
    for nid in (first, second):
        outcome = await herald.client.get_handle(nid).outcome()
        assert outcome.status is NotificationStatus.delivered, (nid, outcome.status, outcome.duplicate_of)
    sent = sorted(p.stem for p in herald.outbox("email").glob("*.json"))
    assert sent == sorted([first, second]), "two emails reached the outbox, one per firing"


async def test_a_rules_dedup_key_scopes_its_cooldown(herald: Harness) -> None:
    """A rendered dedup_key used to dedup content only (and for 300 s, whatever the cooldown); the cooldown held
    the whole rule, so a second host's first alarm was reported `cooled_down` and never sent."""
    a, user = agent(), f"user-{uuid.uuid4().hex[:6]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    cache = await rules(
        herald,
        TriggerRule(
            name=f"disk-{a}",
            agent_id=a,
            condition="disk_used > 0.9",
            cooldown_seconds=300,
            channels=[ChannelName.email],
            user_ids=[user],
            title="Disk almost full",
            dedup_key="{{ host }}",
        ),
    )
    web = await herald.client.emit(a, {"disk_used": 0.95, "host": "web-1"}, rules=cache)
    db = await herald.client.emit(a, {"disk_used": 0.97, "host": "db-1"}, rules=cache)
    again = await herald.client.emit(a, {"disk_used": 0.99, "host": "web-1"}, rules=cache)
    assert [f.rule for f in web.fired] == [f"disk-{a}"] and [f.rule for f in db.fired] == [f"disk-{a}"]
    assert again.fired == [] and [c.rule for c in again.cooled_down] == [f"disk-{a}"], "web-1 is cooling down"
    ids = [*web.fired[0].notification_ids, *db.fired[0].notification_ids]
    for nid in ids:
        assert (await herald.client.get_handle(nid).outcome()).status is NotificationStatus.delivered
    assert sorted(p.stem for p in herald.outbox("email").glob("*.json")) == sorted(ids)
