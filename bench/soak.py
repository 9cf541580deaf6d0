"""The soak (`make soak`): 10 notifications/s through `herald api` for 10 minutes, 1% of provider calls failing.

Four processes on free loopback ports in a fresh temporary HERALD_HOME: a Temporal dev server (in memory: on a
shared machine, fsync per transaction of its SQLite file made Temporal, not Herald, the bottleneck; the crash
tests cover its persistence), `herald worker`, `herald api` (auth on, the admin key), and this one, which posts the notifications over
HTTP and runs the providers: a SendGrid and a webhook receiver that answer 503 to 1% of calls at random and
count, per idempotency key, what they accepted (tests/faults/ledger.py). Every notification goes to email and
a webhook, so 10/s is 20 provider deliveries/s.

At the end: every notification's outcome (from the delivery log's outcome table), every (notification,
channel) counted at the providers (lost, duplicates), and the worker's and API's resident memory sampled every
few seconds, with its slope over the second half of the run (the first half fills caches: the workflow cache,
connection pools). Written to bench/results/soak.json and bench/results/soak.md; exit 1 if anything was lost
or memory grew.

    SOAK_SECONDS=600 SOAK_RATE=10 SOAK_ERROR_RATE=0.01 python -m bench.soak
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa

from bench.common import RESULTS, save_result
from herald.adapters.store import Store, schema
from herald.models import AgentNotification, ChannelName
from tests.fakes.http import start_fake
from tests.faults.ledger import Ledger, keys, tally
from tests.faults.procs import HeraldApi, TemporalServer, herald_env, herald_worker
from tests.faults.scenario import USERS, provider_env, seed_contacts

ADMIN_KEY = "soak-admin-key-0123456789abcdef"
AGENT = "soak-agent"
CHANNELS = (ChannelName.email, ChannelName.webhook)
SAMPLE_EVERY = 5.0
# How long to wait after the last post for every outcome: a starved worker (the machine is shared) lags, and
# accounting for every notification matters more than when.
DRAIN_SECONDS = float(os.environ.get("SOAK_DRAIN_SECONDS", "2400"))
IN_FLIGHT = 50  # posts waiting for an answer at once, at most: agents don't open a connection per event
# "Flat": the second half's trend, projected over an hour, stays under this share of the mean RSS.
FLAT_PER_HOUR = 0.10


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)  # seconds since the start
    worker_mb: list[float] = field(default_factory=list)
    api_mb: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # the machine's 1-minute load average (it is shared)


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


def slope_per_minute(times: list[float], values: list[float]) -> float:
    """Least-squares slope, MB per minute."""
    if len(times) < 3:
        return 0.0
    return float(statistics.linear_regression(times, values).slope * 60)


def memory_verdict(samples: Samples, which: list[float]) -> dict[str, Any]:
    half = len(samples.times) // 2
    times, values = samples.times[half:], which[half:]
    slope = slope_per_minute(times, values)
    mean = statistics.fmean(values) if values else 0.0
    per_hour = slope * 60 / mean if mean else 0.0
    return {
        "first_mb": round(which[0], 1) if which else None,
        "peak_mb": round(max(which), 1) if which else None,
        "last_mb": round(which[-1], 1) if which else None,
        "second_half_slope_mb_per_min": round(slope, 3),
        "second_half_growth_per_hour": round(per_hour, 4),
        "flat": per_hour < FLAT_PER_HOUR,
    }


async def sample(samples: Samples, worker_pid: int, api_pid: int, started: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.times.append(time.monotonic() - started)
        samples.worker_mb.append(rss_mb(worker_pid))
        samples.api_mb.append(rss_mb(api_pid))
        samples.load.append(os.getloadavg()[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)


def latency_summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}
    ordered = sorted(latencies)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(ordered[-1] * 1000, 1)}


def note(seq: int) -> AgentNotification:
    return AgentNotification(
        agent_id=AGENT,
        user_id=USERS[seq % len(USERS)],
        title=f"soak {seq}",
        body="queue depth 1200 on ingest",
        channels=list(CHANNELS),
    )


@dataclass
class Posting:
    """What the agents saw: answers the API refused or dropped (retried), and how long each accepted post took."""

    refused: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(IN_FLIGHT))


async def post(api: httpx.AsyncClient, notification: AgentNotification, posting: Posting) -> None:
    """One agent's post, retried with the same id until the API takes it."""
    body = notification.model_dump(mode="json")
    refused = posting.refused
    for _ in range(50):
        try:
            async with posting.gate:
                started = time.monotonic()
                response = await api.post("/v1/notifications", json=body)
        except httpx.TransportError as exc:
            refused[type(exc).__name__] += 1
            await asyncio.sleep(0.5)
            continue
        if response.status_code == 202:
            posting.latencies.append(time.monotonic() - started)
            return
        refused[str(response.status_code)] += 1
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the API never took notification {notification.notification_id}")


async def drive(api: httpx.AsyncClient, seconds: float, rate: float, posting: Posting) -> list[AgentNotification]:
    """Post `rate` notifications a second for `seconds`, on a fixed schedule (a slow answer doesn't slow it)."""
    sent: list[AgentNotification] = []
    tasks: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    seq = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(elapsed * rate) + 1
        while seq < due:
            notification = note(seq)
            sent.append(notification)
            task = asyncio.create_task(post(api, notification, posting))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            seq += 1
        await asyncio.sleep(max(0.0, (seq / rate) - (time.monotonic() - started)))
    await asyncio.gather(*tasks)
    return sent


async def recorded_statuses(store: Store, agent_id: str) -> dict[str, str]:
    """Every recorded outcome of the agent's notifications, in one query (the store's own table)."""
    table = schema.notifications
    query = sa.select(table.c.notification_id, table.c.status).where(table.c.agent_id == agent_id)
    async with store.engine.connect() as conn:
        return {row.notification_id: row.status for row in await conn.execute(query)}


async def wait_for_outcomes(store: Store, ids: list[str], timeout: float) -> dict[str, str | None]:
    """Each notification's recorded status once all are recorded, or whatever is recorded at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        recorded = await recorded_statuses(store, AGENT)
        if all(i in recorded for i in ids) or time.monotonic() > deadline:
            return {i: recorded.get(i) for i in ids}
        await asyncio.sleep(5)


async def soak(home: Path, seconds: float, rate: float, error_rate: float) -> dict[str, Any]:
    ledger = Ledger(error_rate=error_rate)
    server, serving, ledger.port = await start_fake(ledger)
    database_url = f"sqlite+aiosqlite:///{home / 'herald.db'}"
    store = await Store.open(database_url)
    await seed_contacts(store, ledger)
    temporal = TemporalServer(home / "temporal", persistent=False)
    (home / "temporal").mkdir()
    await temporal.start()
    env = herald_env(
        home,
        temporal.address,
        "herald",
        HERALD_DATABASE_URL=database_url,
        HERALD_ADMIN_KEY=ADMIN_KEY,
        HERALD_RETRY_INITIAL_SECONDS="1",
        HERALD_RETRY_BACKOFF="2",
        HERALD_RETRY_MAX_INTERVAL_SECONDS="8",
        HERALD_RETRY_MAX_RETRIES="5",
        **provider_env(ledger),
    )
    worker = herald_worker(home / "worker.log", env)
    api_process = HeraldApi(home / "api.log", env)
    samples = Samples()
    posting = Posting()
    stop = asyncio.Event()
    try:
        await worker.start()
        await api_process.start()
        started = time.monotonic()
        sampler = asyncio.create_task(sample(samples, worker.pid, api_process.pid, started, stop))
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=api_process.url, headers=headers, timeout=30) as api:
            print(f"soak: {rate:g}/s for {seconds:g}s, {error_rate:.1%} provider errors, home {home}", flush=True)
            sent = await drive(api, seconds, rate, posting)
        posted_for = time.monotonic() - started
        print(f"soak: posted {len(sent)} in {posted_for:.0f}s; waiting for every outcome", flush=True)
        statuses = await wait_for_outcomes(store, [n.notification_id for n in sent], timeout=DRAIN_SECONDS)
        drained_after = time.monotonic() - started - posted_for
        stop.set()
        await sampler
        alive = {"worker": worker.running, "api": api_process.running}
    finally:
        stop.set()
        await api_process.terminate()
        await worker.terminate()
        await temporal.kill()
        await store.close()
        ledger.release.set()
        server.should_exit = True
        await serving

    counted = tally(keys([n.notification_id for n in sent], [c.value for c in CHANNELS]), ledger.accepted)
    outcome_counts = Counter(s or "unfinished" for s in statuses.values())
    return {
        "seconds": seconds,
        "rate_target_per_s": rate,
        "rate_posted_per_s": round(len(sent) / posted_for, 2),
        "error_rate_injected": error_rate,
        "notifications": len(sent),
        "outcomes": dict(outcome_counts),
        "unfinished": outcome_counts.get("unfinished", 0),
        "drained_after_s": round(drained_after, 1),
        "deliveries_expected": counted.expected,
        "deliveries_made": counted.delivered,
        "lost": len(counted.lost),
        "lost_keys": counted.lost[:50],
        "duplicates": counted.duplicate_sends,
        "duplicate_keys": sorted(counted.duplicates)[:50],
        "unexpected": len(counted.unexpected),
        "provider_503s_injected": dict(ledger.refused),
        "api_refusals_retried": dict(posting.refused),
        "api_accept_latency_ms": latency_summary(posting.latencies),
        "processes_alive_at_end": alive,
        "machine_load_average": {
            "mean": round(statistics.fmean(samples.load), 2) if samples.load else None,
            "max": round(max(samples.load), 2) if samples.load else None,
            "cores": os.cpu_count(),
        },
        "memory": {
            "sample_every_s": SAMPLE_EVERY,
            "flat_means": f"second-half trend under {FLAT_PER_HOUR:.0%} of mean RSS per hour",
            "worker": memory_verdict(samples, samples.worker_mb),
            "api": memory_verdict(samples, samples.api_mb),
            "samples": [
                {"t": round(t, 1), "worker_mb": round(w, 1), "api_mb": round(a, 1)}
                for t, w, a in zip(samples.times, samples.worker_mb, samples.api_mb, strict=True)
            ],
        },
    }


def passed(metrics: dict[str, Any]) -> bool:
    memory = metrics["memory"]
    return (
        metrics["lost"] == 0
        and metrics["unfinished"] == 0
        and metrics["unexpected"] == 0
        and all(metrics["processes_alive_at_end"].values())
        and memory["worker"]["flat"]
        and memory["api"]["flat"]
    )


def markdown(metrics: dict[str, Any], ok: bool) -> str:
    worker, api = metrics["memory"]["worker"], metrics["memory"]["api"]
    rows = [
        ("verdict", "PASS: nothing lost, memory flat" if ok else "FAIL"),
        (
            "duration",
            f"{metrics['seconds']:g} s at {metrics['rate_posted_per_s']} notifications/s (target {metrics['rate_target_per_s']:g})",
        ),
        (
            "provider errors injected",
            f"{metrics['error_rate_injected']:.1%} of calls: {metrics['provider_503s_injected']}",
        ),
        (
            "notifications",
            f"{metrics['notifications']}; outcomes {metrics['outcomes']}; all recorded {metrics['drained_after_s']} s after the last post",
        ),
        (
            "(notification, channel) deliveries",
            f"{metrics['deliveries_made']} of {metrics['deliveries_expected']} counted at the providers",
        ),
        ("lost", str(metrics["lost"])),
        ("API accept latency", f"{metrics['api_accept_latency_ms']} ms; retried {metrics['api_refusals_retried']}"),
        ("machine load", f"{metrics['machine_load_average']} (a shared machine: other work ran too)"),
        (
            "duplicates",
            f"{metrics['duplicates']} ({metrics['duplicates'] / max(1, metrics['deliveries_expected']):.3%})",
        ),
        (
            "worker RSS",
            f"{worker['first_mb']} MB at start, peak {worker['peak_mb']}, end {worker['last_mb']}; second half {worker['second_half_slope_mb_per_min']:+} MB/min ({'flat' if worker['flat'] else 'GROWING'})",
        ),
        (
            "API RSS",
            f"{api['first_mb']} MB at start, peak {api['peak_mb']}, end {api['last_mb']}; second half {api['second_half_slope_mb_per_min']:+} MB/min ({'flat' if api['flat'] else 'GROWING'})",
        ),
    ]
    lines = [
        "# Soak",
        "",
        "`make soak` (bench/soak.py): `herald api` and `herald worker` as separate processes, the Temporal dev",
        "server (in memory), Herald's store in SQLite, SendGrid and a webhook receiver faked on loopback, each",
        "failing 1% of calls with 503.",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += [
        "",
        f'Memory is sampled every {metrics["memory"]["sample_every_s"]:g} s; "flat" means {metrics["memory"]["flat_means"]}.',
        "Raw samples and every count: [soak.json](soak.json).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    rate = float(os.environ.get("SOAK_RATE", "10"))
    error_rate = float(os.environ.get("SOAK_ERROR_RATE", "0.01"))
    name = os.environ.get("SOAK_NAME", "soak")
    home = Path(tempfile.mkdtemp(prefix="herald-soak-"))
    metrics = asyncio.run(soak(home, seconds, rate, error_rate))
    ok = passed(metrics)
    if ok:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"soak: the processes' logs and data are kept in {home}", flush=True)
    path = save_result(
        name,
        metrics,
        targets={"lost": 0, "rate_per_s": rate, "memory": "flat"},
        notes=["Every notification is accounted for: its outcome recorded, each channel counted at the provider."],
    )
    (RESULTS / f"{name}.md").write_text(markdown(metrics, ok))
    summary = {k: metrics[k] for k in ("notifications", "outcomes", "lost", "duplicates", "provider_503s_injected")}
    print(json.dumps(summary), flush=True)
    print(f"soak: {'PASS' if ok else 'FAIL'}; wrote {path} and {name}.md", flush=True)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
