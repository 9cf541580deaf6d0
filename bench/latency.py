"""Benchmark 2, latency: an agent's event posted to `POST /v1/events` until the WebSocket frame reaches the person.

A steady 10 events/s for 60 s. Each event matches one rule (cooldown 0, a dedup key per event, push + email), so
every event fires one notification; a WebSocket client connected with a user token receives each frame and acks
it. Latency is from just before the POST is sent to the frame's arrival, both read on this process's clock.
p50, p95 and p99 are divided by the p50 of an empty workflow's start-to-result round trip on the same stack,
measured one at a time before and after the load. Targets: p50 at most 3x, p99 at most 10x.

The API and the worker share one process, as in `herald dev` (the in-process push hub needs them together).

    python -m bench.latency            # 10 events/s for 60 s
    python -m bench.latency --quick    # 10 events/s for 10 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.common import save_result
from bench.empty import EmptyWorkflow
from bench.stack import TASK_QUEUE, Stack, console, embedded_stack, median, percentile, progress_bar, run_main
from herald.adapters.store import Store
from herald.models import ChannelName, Contact, TriggerRule
from herald.services.auth import issue_token

AGENT = "bench-agent"
USER = "bench-user"
RULE = "bench-latency"
TARGETS = {"p50_ratio": 3.0, "p99_ratio": 10.0}


@dataclass
class Timings:
    """Send times by notification id (from the POST's answer) and frame arrival times by notification id."""

    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    post_seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fired_none: int = 0


async def prepare(store: Store) -> str:
    await store.users.put_contact(USER, Contact(email=f"{USER}@example.com"))
    await store.rules.put_rule(
        TriggerRule(
            name=RULE,
            agent_id="*",  # every agent: --agents N spreads the events over N agent ids
            condition="queue_depth > 0",
            cooldown_seconds=0,
            user_ids=[USER],
            channels=[ChannelName.push, ChannelName.email],
            title="Queue depth {{ queue_depth }} on {{ agent_id }}",
            body="Event {{ seq }}: the queue is backing up.",
            dedup_key="{{ run }}-{{ seq }}",  # distinct per event, and per run (warm-up events too)
        )
    )
    return await issue_token(store, "user", USER)


async def read_frames(ws: ClientConnection, timings: Timings) -> None:
    """Record each notification frame's arrival and ack it, as a browser would."""
    async for message in ws:
        arrived = time.perf_counter()
        frame = json.loads(message)
        if frame.get("type") == "notification":
            notification_id = frame["notification_id"]
            timings.received.setdefault(notification_id, arrived)
            await ws.send(json.dumps({"type": "ack", "notification_id": notification_id}))


async def post_event(http: httpx.AsyncClient, seq: int, run: str, timings: Timings, agents: int) -> None:
    body = {
        "agent_id": AGENT if agents == 1 else f"{AGENT}-{seq % agents}",
        "event_id": f"{run}-{seq}",
        "metrics": {"queue_depth": 100 + seq, "seq": seq, "run": run},
    }
    sent = time.perf_counter()
    try:
        response = await http.post("/v1/events", json=body)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        code = exc.response.json().get("error", {}).get("code", "") if exc.response.content else ""
        timings.errors.append(f"HTTP {exc.response.status_code} {code}".strip())
        return
    except httpx.HTTPError as exc:
        timings.errors.append(type(exc).__name__)
        return
    timings.post_seconds.append(time.perf_counter() - sent)
    ids = [nid for fired in response.json()["fired"] for nid in fired["notification_ids"]]
    if not ids:
        timings.fired_none += 1
    for notification_id in ids:
        timings.sent[notification_id] = sent


async def steady_load(
    stack: Stack,
    token: str,
    *,
    rate: float,
    seconds: float,
    run: str,
    label: str,
    agents: int = 1,
    drain: float = 60,
) -> Timings:
    """Post `rate` events/s for `seconds` on a fixed schedule (a slow answer never delays the next event)."""
    timings = Timings()
    total = round(rate * seconds)
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http,
        connect(f"ws://127.0.0.1:{stack.ports.api}/v1/ws?token={token}") as ws,
    ):
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if ready.get("type") != "ready":
            raise RuntimeError(f"the WebSocket said {ready.get('type')!r} instead of ready")
        reader = asyncio.create_task(read_frames(ws, timings))
        posts: list[asyncio.Task[None]] = []
        with progress_bar() as progress:
            bar = progress.add_task(label, total=total)
            start = time.perf_counter()
            for seq in range(total):
                delay = start + seq / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(asyncio.create_task(post_event(http, seq, run, timings, agents)))
                progress.advance(bar)
            await asyncio.gather(*posts)
            deadline = time.perf_counter() + drain
            while set(timings.sent) - set(timings.received) and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
        reader.cancel()
    return timings


async def empty_round_trips(stack: Stack, count: int, prefix: str) -> list[float]:
    """Start-to-result of the empty workflow, one at a time: the Temporal round trip on an idle stack."""
    seconds = []
    for index in range(count):
        started = time.perf_counter()
        await stack.client.execute_workflow(EmptyWorkflow.run, id=f"rt/{prefix}-{index}", task_queue=TASK_QUEUE)
        seconds.append(time.perf_counter() - started)
    return seconds


def ms(value: float) -> float:
    return round(1000 * value, 2)


def _seconds(event: Any) -> float:
    return float(event.event_time.ToDatetime().timestamp())


async def breakdown(stack: Stack, notification_ids: list[str], empty_ids: list[str]) -> dict[str, Any]:
    """Where an event's time goes, from the server's own timestamps in the histories (medians, ms).

    For a notification: its one workflow task (queued, then run: dedup, preferences and the push frame as local
    activities). A rule with a cooldown adds the monitor's workflow task for the event (queued, then run by the
    worker) and the server starting the child; this benchmark's rule has none, so the API starts the notification
    itself and those stages are absent. For the empty workflow: its one task, queued then run.
    """
    stages: dict[str, list[float]] = {
        "monitor task queued": [],
        "monitor task run": [],
        "child start": [],
        "notification task queued": [],
        "notification task run": [],
    }
    monitors: dict[str, dict[int, Any]] = {}
    for notification_id in notification_ids:
        child = await stack.client.get_workflow_handle(f"notification/{notification_id}").fetch_history()
        events = list(child.events)
        started = events[0].workflow_execution_started_event_attributes
        task_started = next(e for e in events if e.HasField("workflow_task_started_event_attributes"))
        task_done = next(e for e in events if e.HasField("workflow_task_completed_event_attributes"))
        stages["notification task queued"].append(_seconds(task_started) - _seconds(events[0]))
        stages["notification task run"].append(_seconds(task_done) - _seconds(task_started))
        parent = started.parent_workflow_execution
        if not parent.workflow_id:  # started by the API itself: no monitor stages
            continue
        if parent.run_id not in monitors:
            history = await stack.client.get_workflow_handle(parent.workflow_id, run_id=parent.run_id).fetch_history()
            monitors[parent.run_id] = {e.event_id: e for e in history.events}
        monitor = monitors[parent.run_id]
        initiated = monitor[started.parent_initiated_event_id]
        completed = monitor[
            initiated.start_child_workflow_execution_initiated_event_attributes.workflow_task_completed_event_id
        ]
        attrs = completed.workflow_task_completed_event_attributes
        scheduled, run = monitor[attrs.scheduled_event_id], monitor[attrs.started_event_id]
        stages["monitor task queued"].append(_seconds(run) - _seconds(scheduled))
        stages["monitor task run"].append(_seconds(completed) - _seconds(run))
        stages["child start"].append(_seconds(events[0]) - _seconds(completed))
    empty: dict[str, list[float]] = {"empty task queued": [], "empty task run": []}
    for workflow_id in empty_ids:
        events = list((await stack.client.get_workflow_handle(workflow_id).fetch_history()).events)
        task_started = next(e for e in events if e.HasField("workflow_task_started_event_attributes"))
        task_done = next(e for e in events if e.HasField("workflow_task_completed_event_attributes"))
        empty["empty task queued"].append(_seconds(task_started) - _seconds(events[0]))
        empty["empty task run"].append(_seconds(task_done) - _seconds(task_started))
    return {name: ms(median(values)) for name, values in {**stages, **empty}.items() if values}


async def run(rate: float, seconds: float, baseline_count: int, agents: int) -> dict[str, Any]:
    token_box: list[str] = []

    async def setup(store: Store) -> None:
        token_box.append(await prepare(store))

    async with embedded_stack(api=True, prepare=setup) as stack:
        token = token_box[0]
        run_id = uuid.uuid4().hex[:8]
        await empty_round_trips(stack, 10, "warm")
        # The first events warm the worker, the API and the push path: not counted.
        await steady_load(stack, token, rate=rate, seconds=2, run=f"{run_id}w", label="warm-up events", agents=agents)
        before = await empty_round_trips(stack, baseline_count, "before")
        timings = await steady_load(
            stack, token, rate=rate, seconds=seconds, run=run_id, label=f"events at {rate:g}/s", agents=agents
        )
        after = await empty_round_trips(stack, baseline_count, "after")
        sample = sorted(timings.sent)[:: max(1, len(timings.sent) // 50)]
        stages = await breakdown(stack, sample, [f"rt/after-{i}" for i in range(min(50, baseline_count))])
    latencies = [timings.received[nid] - sent for nid, sent in timings.sent.items() if nid in timings.received]
    if not latencies:
        raise RuntimeError(f"no frame arrived (errors: {timings.errors[:5]})")
    baseline = median(before + after)
    p50, p95, p99 = (percentile(latencies, p) for p in (50, 95, 99))
    return {
        "events": round(rate * seconds),
        "rate_per_second": rate,
        "seconds": seconds,
        "notifications_fired": len(timings.sent),
        "frames_received": len(latencies),
        "frames_missing": len(timings.sent) - len(latencies),
        "post_errors": len(timings.errors),
        "post_errors_by_kind": dict(Counter(timings.errors)),
        "agents": agents,
        "events_not_fired": timings.fired_none,
        "latency_ms": {
            "p50": ms(p50),
            "p95": ms(p95),
            "p99": ms(p99),
            "max": ms(max(latencies)),
            "min": ms(min(latencies)),
        },
        "post_202_ms": {
            "p50": ms(percentile(timings.post_seconds, 50)),
            "p99": ms(percentile(timings.post_seconds, 99)),
        },
        "empty_round_trip_ms": {
            "p50": ms(baseline),
            "p50_before": ms(median(before)),
            "p50_after": ms(median(after)),
            "p99": ms(percentile(before + after, 99)),
            "count": len(before) + len(after),
        },
        "stages_median_ms": stages,
        # Every sample, for the report's distribution plot (histogram and CDF).
        "event_to_frame": {"samples_ms": [ms(v) for v in sorted(latencies)]},
        "empty_round_trip": {"samples_ms": [ms(v) for v in sorted(before + after)]},
        "p50_ratio": round(p50 / baseline, 2),
        "p95_ratio": round(p95 / baseline, 2),
        "p99_ratio": round(p99 / baseline, 2),
        "meets_target": p50 / baseline <= TARGETS["p50_ratio"] and p99 / baseline <= TARGETS["p99_ratio"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s of events instead of 60: a smoke run")
    parser.add_argument("--rate", type=float, default=10.0, help="events per second")
    parser.add_argument("--seconds", type=float, help="how long to send events (default 60, --quick 10)")
    parser.add_argument("--agents", type=int, default=1, help="spread events over this many agent ids")
    parser.add_argument("--save-as", help="save under this name instead (runs at another rate or agent count)")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    baseline_count = 20 if args.quick else 100

    async def go() -> None:
        metrics = await run(args.rate, seconds, baseline_count, args.agents)
        notes = [
            f"{args.rate:g} events/s for {seconds:g} s to POST /v1/events from {args.agents} agent id(s), one rule "
            "(cooldown 0, a dedup key per event, push + email), one WebSocket client acking every frame; warm-up "
            "events not counted",
            "latency: perf_counter before the POST to the frame's arrival at the client, same process",
            f"baseline: empty workflow start-to-result, one at a time, {baseline_count} before and {baseline_count} "
            "after the load; ratio = latency percentile / baseline p50",
            "stack: temporal dev server (--db-filename SQLite) + one process with the worker and the API "
            "(as herald dev); payloads encrypted as in herald dev",
        ]
        if args.quick:
            notes.append("--quick: a smoke run, not the benchmark's size")
        # A smoke run, or a run at another rate or agent count, never replaces the real result.
        name = args.save_as or ("latency-quick" if args.quick else "latency")
        targets = {"p50_ratio": f"<= {TARGETS['p50_ratio']:g}", "p99_ratio": f"<= {TARGETS['p99_ratio']:g}"}
        path = save_result(name, metrics, targets=targets, notes=notes)
        console.print(metrics)
        console.print(f"saved {path}")

    run_main(go())


if __name__ == "__main__":
    main()
