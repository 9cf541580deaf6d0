"""MonitorWorkflow on the real dev server: cooldowns, bursts, repeats, restarts and run rotation.

Events go in exactly as `HeraldClient.emit` sends them after matching (`send_event`); the rules engine
itself is tested in tests/herald/test_rules.py and end to end in tests/workflows/test_emit.py. (`emit` sends
only rules with a cooldown here; `send_event` takes any, so the monitor still handles rules without one.)
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from herald.domain.events import plan_firings
from herald.models import (
    ChannelName,
    EmitResult,
    EventRequest,
    Firing,
    MonitorState,
    NotificationStatus,
    Priority,
    utcnow,
)
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness
from tests.faults.procs import herald_env, herald_worker
from workflows.monitor import MonitorWorkflow


def agent() -> str:
    return f"agent-{uuid.uuid4().hex[:8]}"


def request(agent_id: str, *rules: tuple[str, int], users: tuple[str, ...] = ("ada",), event_id: str | None = None):  # type: ignore[no-untyped-def]
    event_id = event_id or uuid.uuid4().hex
    firings = [
        Firing(
            rule=name,
            cooldown_seconds=cooldown,
            user_ids=list(users),
            channels=[ChannelName.email],
            priority=Priority.medium,
            title=f"{name} on {agent_id}",
        )
        for name, cooldown in rules
    ]
    return EventRequest(
        agent_id=agent_id,
        event_id=event_id,
        plans=plan_firings(agent_id, event_id, firings, utcnow()),
        policy=FAST_POLICY,
    )


def fired(result: EmitResult) -> dict[str, list[str]]:
    return {f.rule: f.notification_ids for f in result.fired}


async def test_first_event_fires_and_starts_one_notification_per_user(herald: Harness) -> None:
    a = agent()
    result = await herald.client.send_event(request(a, ("high-errors", 300), users=("ada", "bo")))
    [ids] = fired(result).values()
    assert len(ids) == 2 and result.cooled_down == []
    for nid in ids:
        outcome = await herald.client.get_handle(nid).outcome()
        assert outcome.agent_id == a
        # Nobody has an email address in this test, so the notification ends without a channel to use.
        assert outcome.status in (NotificationStatus.failed, NotificationStatus.no_channel)
    handle = herald.client.temporal.get_workflow_handle(f"monitor/{a}")
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_burst_of_50_fires_once_then_again_after_the_cooldown(herald: Harness) -> None:
    a = agent()
    # A cooldown far longer than the burst takes, even on a loaded machine: exactly one of the 50 fires.
    results = await asyncio.gather(*(herald.client.send_event(request(a, ("stuck", 120))) for _ in range(50)))
    fired_once = [r for r in results if r.fired]
    assert len(fired_once) == 1
    held = [r for r in results if r.cooled_down]
    assert len(held) == 49
    until = held[0].cooled_down[0].until
    assert all(r.cooled_down[0].until == until for r in held), "every held event names the same end"
    # Once a (short) cooldown is over, the next match fires again.
    first = await herald.client.send_event(request(a, ("brief", 1)))
    assert list(fired(first)) == ["brief"]
    await asyncio.sleep(1.2)  # the monitor decided `first` before it answered: its cooldown is over now
    again = await herald.client.send_event(request(a, ("brief", 1)))
    assert list(fired(again)) == ["brief"]


async def test_rules_cool_down_independently(herald: Harness) -> None:
    a = agent()
    first = await herald.client.send_event(request(a, ("errors", 300)))
    second = await herald.client.send_event(request(a, ("errors", 300), ("latency", 300)))
    assert list(fired(first)) == ["errors"]
    assert list(fired(second)) == ["latency"]
    assert [c.rule for c in second.cooled_down] == ["errors"]


async def test_a_repeated_event_id_fires_once_even_without_a_cooldown(herald: Harness) -> None:
    """`emit` starts such rules itself (test_emit.py); a monitor given one (`send_event`) still dedups by event id."""
    a = agent()
    same = request(a, ("no-cooldown", 0))
    first, repeat = await herald.client.send_event(same), await herald.client.send_event(same)
    assert first == repeat, "a retried event gets the first answer"
    other = await herald.client.send_event(request(a, ("no-cooldown", 0)))
    assert list(fired(other)) == ["no-cooldown"], "with no cooldown, a different event fires again"
    assert fired(other) != fired(first)
    await herald.client.temporal.get_workflow_handle(f"monitor/{a}").describe()  # the monitor answered these


async def test_cooldown_survives_a_worker_sigkill_mid_burst(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The `herald worker` process is killed with SIGKILL while a burst is in flight and a new one takes over:
    still exactly one firing. (It used to shut an in-process worker down gracefully.)"""
    a, queue = agent(), f"restart-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "herald"
    env = herald_env(home, temporal_env.client.service_client.config.target_host, queue)
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
    try:
        await worker.start()
        burst = [asyncio.create_task(client.send_event(request(a, ("stuck", 300)))) for _ in range(25)]
        await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
        await worker.kill()
        burst += [asyncio.create_task(client.send_event(request(a, ("stuck", 300)))) for _ in range(25)]
        await worker.start()
        results = await asyncio.wait_for(asyncio.gather(*burst), 120)
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
    assert sum(bool(r.fired) for r in results) == 1
    assert sum(bool(r.cooled_down) for r in results) == 49


async def test_monitor_continues_as_new_and_keeps_cooldowns(herald: Harness) -> None:
    a = agent()
    seed = MonitorState(agent_id=a, events_per_run=3)
    first = await herald.client.send_event(request(a, ("stuck", 300)), state=seed)
    assert list(fired(first)) == ["stuck"]
    handle = herald.client.temporal.get_workflow_handle_for(MonitorWorkflow.run, f"monitor/{a}")
    first_run = (await handle.describe()).run_id
    for _ in range(6):
        result = await herald.client.send_event(request(a, ("stuck", 300)))
        assert [c.rule for c in result.cooled_down] == ["stuck"]
    latest = herald.client.temporal.get_workflow_handle_for(MonitorWorkflow.run, f"monitor/{a}")
    assert (await latest.describe()).run_id != first_run, "the monitor rotated to a new run"
    state = await latest.query(MonitorWorkflow.state)
    assert "stuck" in state.cooling_until and state.events_per_run == 3


async def test_event_for_another_agent_is_refused(herald: Harness) -> None:
    a, b = agent(), agent()
    await herald.client.send_event(request(a, ("r", 300)))
    handle = herald.client.temporal.get_workflow_handle_for(MonitorWorkflow.run, f"monitor/{a}")
    wrong = request(b, ("r", 300))
    try:
        await handle.execute_update(MonitorWorkflow.event, wrong, id=wrong.event_id)
    except Exception as exc:
        assert "sent to the monitor of" in str(exc.__cause__ or exc) or "sent to the monitor of" in str(exc)
    else:
        raise AssertionError("the validator let another agent's event in")


async def test_an_event_retried_after_continue_as_new_does_not_run_its_notification_again(herald: Harness) -> None:
    """It used to: the new run had never seen the event's update id, the cooldown had ended, and the child was
    started with the default id reuse policy, so the finished `notification/<id>` ran a second time (and the
    retry restarted the rule's cooldown, holding back the next real event)."""
    a = agent()
    first = request(a, ("stuck", 1))
    result = await herald.client.send_event(first, state=MonitorState(agent_id=a, events_per_run=1))
    [nid] = fired(result)["stuck"]
    notification = herald.client.temporal.get_workflow_handle(f"notification/{nid}")
    await notification.result()
    run_id = (await notification.describe()).run_id
    monitor = herald.client.temporal.get_workflow_handle_for(MonitorWorkflow.run, f"monitor/{a}")
    for _ in range(100):  # one event per run: the monitor continues as new, and the 1 s cooldown ends
        started = (await monitor.fetch_history()).events[0].workflow_execution_started_event_attributes
        state = await monitor.query(MonitorWorkflow.state)
        if started.continued_execution_run_id and all(t < utcnow() for t in state.cooling_until.values()):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the monitor did not continue as new")
    retried = await herald.client.send_event(first)
    assert fired(retried) == {"stuck": [nid]}, "the same firing: it names the same notification"
    assert (await notification.describe()).run_id == run_id, "the finished notification was not started again"
    fresh = await herald.client.send_event(request(a, ("stuck", 1)))
    assert list(fired(fresh)) == ["stuck"], "the retry did not restart the cooldown"
