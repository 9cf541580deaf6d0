"""Retention: the cleanup workflow deletes what is past the period, and the worker keeps its schedule in place."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import PURGED_TABLES
from herald.models import RetentionReport, RetentionRequest, Snooze, utcnow
from tests.conftest import Harness, make_settings
from tests.herald.test_store_audit import seed_old_and_new
from worker import ensure_retention_schedule, run_worker
from workflows.retention import RetentionWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
RECORDING = os.environ.get("HERALD_RECORD_HISTORIES") == "1"


async def test_the_workflow_deletes_what_is_past_the_period_and_reports_it(herald: Harness) -> None:
    await seed_old_and_new(herald.store, utcnow(), 30)
    answers = herald.store.answers
    await answers.put_snooze(Snooze(user_id="ada", scope="agent:a", until=utcnow() - timedelta(minutes=1)))
    live = utcnow() + timedelta(hours=1)
    await answers.put_snooze(Snooze(user_id="ada", scope="agent:b", until=live))
    handle = await herald.client.temporal.start_workflow(
        RetentionWorkflow.run,
        RetentionRequest(retention_days=30, batch_size=2),
        id=f"retention-test-{uuid.uuid4().hex[:8]}",
        task_queue=herald.client.task_queue,
    )
    report = await handle.result()
    assert report.deleted == {**dict.fromkeys(PURGED_TABLES, 1), "answers": 1}, "expired answer rows count too"
    assert report.total == len(PURGED_TABLES) + 1
    assert await answers.snoozed_until("ada", ["agent:a", "agent:b"]) == live
    assert await herald.store.notifications.get_outcome("old") is None
    assert await herald.store.notifications.get_outcome("new") is not None
    assert [a.notification_id for a in await herald.store.notifications.attempts("new")] == ["new"]
    if RECORDING:
        (HISTORIES / "RetentionWorkflow-purged.json").write_text((await handle.fetch_history()).to_json())


async def described(client: Client, handle: ScheduleHandle) -> tuple[timedelta, RetentionRequest, str, bool]:
    """The schedule's interval, input, task queue and paused flag."""
    schedule = (await handle.describe()).schedule
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "RetentionWorkflow"
    [request] = await client.data_converter.decode(list(action.args), [RetentionRequest])
    return schedule.spec.intervals[0].every, request, action.task_queue, schedule.state.paused


async def test_the_schedule_is_created_once_and_follows_the_settings(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    client, schedule_id = temporal_env.client, f"retention-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, task_queue="q1")
    handle = await ensure_retention_schedule(client, settings, schedule_id=schedule_id)
    try:
        assert await described(client, handle) == (timedelta(days=1), RetentionRequest(retention_days=30), "q1", False)
        await handle.pause(note="an operator paused it")
        before = (await handle.describe()).info.last_updated_at
        again = await ensure_retention_schedule(client, settings, schedule_id=schedule_id)
        assert (await again.describe()).info.last_updated_at == before, "unchanged settings change nothing"

        changed = make_settings(tmp_path, task_queue="q2", retention_days=7, retention_interval_seconds=3600)
        await ensure_retention_schedule(client, changed, schedule_id=schedule_id)
        # the new interval, input and queue; the operator's pause stays
        assert await described(client, handle) == (timedelta(hours=1), RetentionRequest(retention_days=7), "q2", True)
    finally:
        await handle.delete()


async def test_the_worker_puts_the_schedule_in_place_and_its_runs_clean_up(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"retention-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        tmp_path / "home",
        temporal_address=temporal_env.client.service_client.config.target_host,
        task_queue=queue,
        retention_schedule_id=queue,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop))
    handle = temporal_env.client.get_schedule_handle(queue)
    try:
        for _ in range(200):  # until the worker has started
            assert not running.done(), running
            try:
                description = await handle.describe()
                break
            except RPCError as exc:
                assert exc.status is RPCStatusCode.NOT_FOUND
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker did not create its schedule")
        assert description.schedule.spec.intervals[0].every == timedelta(days=1)

        await handle.trigger()  # as the daily tick would: the worker runs the cleanup
        for _ in range(200):
            actions = (await handle.describe()).info.recent_actions
            if actions:
                break
            await asyncio.sleep(0.05)
        started = actions[0].action
        assert isinstance(started, ScheduleActionExecutionStartWorkflow)
        run = temporal_env.client.get_workflow_handle(started.workflow_id, result_type=RetentionReport)
        report = await asyncio.wait_for(run.result(), 30)
        assert report.deleted == {**dict.fromkeys(PURGED_TABLES, 0), "answers": 0}
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
        await handle.delete()
