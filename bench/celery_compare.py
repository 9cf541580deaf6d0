"""Benchmark 5, the usual alternative: the same two-channel notifications through Celery on Redis, side by side.

What users build today without durable workflows: a Celery task per (notification, channel) with `acks_late`, a
Redis broker (127.0.0.1:6379, db 12, every key under `herald-bench-celery:`, deleted afterwards), the prefork pool
with one child per core. Each task does what a hand-written notifier does: read the user's preferences and contact
from the store (Herald's SQLite store, the same data), decide with Herald's own `route`, and send through the very
sinks Herald's worker uses, built by `herald.adapters.channels.assembly.build_channels`: push to an in-process PushHub with a client
connected for every user that acks each frame at once, email to the outbox (one JSON file per message). It does
less than Herald: no dedup check, no delivery log, no audit record, no fallback, no status to query.

The Herald side runs the same notifications (`bench.pipeline.notification`: medium, push + email, ten users) on the
embedded stack of `bench.stack` (Temporal dev server + one worker process) in the same run, interleaved with the
Celery batches; the figure is Herald's rate over Celery's.

Then what Celery loses when its worker dies: the worker (the main process and its pool children) is SIGKILLed
half-way through a batch and started again; deliveries that never happened and those that happened twice are
counted from a journal the sinks append to (the acking push client on receipt, the email task after the outbox
write). Once with Celery's default visibility timeout (an hour: unacked messages come back only then), once with
a 10 s one (they come back, and whatever had run but was not yet acked runs again).

    python -m bench.celery_compare [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import redis
from celery import Celery
from celery.signals import worker_ready

from bench.common import ROOT, save_result

T = TypeVar("T")

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("HERALD_BENCH_REDIS_DB", "12"))
KEY_PREFIX = "herald-bench-celery:"
QUEUE = "herald-bench"
DEFAULT_VISIBILITY_TIMEOUT = 3600.0  # Celery's and kombu's default for Redis
SHORT_VISIBILITY_TIMEOUT = 10.0
CONCURRENCY = os.cpu_count() or 2
IN_FLIGHT = 200  # Herald side, as in bench.pipeline
HOME_VARIABLE = "HERALD_BENCH_CELERY_HOME"
VISIBILITY_VARIABLE = "HERALD_BENCH_CELERY_VISIBILITY_TIMEOUT"


def make_celery(visibility_timeout: float) -> Celery:
    """The app as a user would configure it for notifications: late acks, no results, JSON, one queue."""
    app = Celery("herald_bench", broker=f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}")
    app.conf.update(
        task_acks_late=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=4,  # the default, said out loud: 4 messages per child are taken ahead
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,  # no pidbox fanout keys on the shared Redis
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "global_keyprefix": KEY_PREFIX,
            "visibility_timeout": visibility_timeout,
            # Sweep for expired unacked messages every second, so a short timeout shows within the run.
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )
    return app


celery_app = make_celery(float(os.environ.get(VISIBILITY_VARIABLE, DEFAULT_VISIBILITY_TIMEOUT)))


# --- inside a Celery pool child ------------------------------------------------------------------------------------


class Sinks:
    """Herald's channels, store and push hub on an event loop thread of this process, plus the delivery journal."""

    def __init__(self, home: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sinks", daemon=True)
        self.thread.start()
        # Unbuffered appends: a line written survives a SIGKILL of this process (it is in the kernel already).
        self.journal = os.open(home / f"journal-{os.getpid()}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.call(self._open(home))

    async def _open(self, home: Path) -> None:
        from bench.pipeline import USERS
        from bench.stack import bench_only_settings
        from herald.adapters.channels.assembly import build_channels
        from herald.adapters.channels.push import PushHub
        from herald.adapters.store import Store

        self.settings = bench_only_settings(home=home, auth=False, log_level="WARNING")
        self.store = await Store.open(self.settings.resolved_database_url)
        self.hub = PushHub(ack_timeout=self.settings.push.ack_timeout_seconds, queue_size=self.settings.push.queue_size)
        self.channels = build_channels(self.settings, self.hub, self.store.users)
        self.clients = [asyncio.create_task(self._acking_client(user)) for user in USERS]

    async def _acking_client(self, user: str) -> None:
        """What a live browser does: take each frame, ack it. Receipt is the push delivery the journal counts."""
        connection = self.hub.connect(user)
        while True:
            frame = await connection.receive()
            self.record("push", str(frame["notification_id"]))
            connection.ack(frame["notification_id"])

    def record(self, channel: str, notification_id: str) -> None:
        os.write(self.journal, f"{channel} {notification_id} {time.time():.6f}\n".encode())

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    async def deliver(self, payload: dict[str, Any], channel_name: str) -> str:
        """A hand-written notifier's task body: preferences, contact, send."""
        from herald.adapters.channels.base import OutboundMessage
        from herald.domain.routing import route
        from herald.models import AgentNotification, ChannelName, Contact, utcnow

        notification = AgentNotification.model_validate(payload)
        channel = ChannelName(channel_name)
        preferences = await self.store.users.get_preferences(notification.user_id)
        if not route(notification, preferences, utcnow()).enabled.get(channel, False):
            return "skipped"
        contact = await self.store.users.get_contact(notification.user_id) or Contact()
        key = f"celery/{notification.notification_id}/{channel.value}"
        await self.channels[channel].send(OutboundMessage(notification, channel, key, contact))
        if channel is not ChannelName.push:  # push is recorded by the client on receipt
            self.record(channel.value, notification.notification_id)
        return "delivered"


_sinks: Sinks | None = None


def sinks() -> Sinks:
    """One Sinks per pool child, made on its first task (after the fork: threads and loops don't survive one)."""
    global _sinks
    if _sinks is None:
        _sinks = Sinks(Path(os.environ[HOME_VARIABLE]))
    return _sinks


@celery_app.task(name="herald_bench.deliver", acks_late=True, ignore_result=True)
def deliver(payload: dict[str, Any], channel: str) -> str:
    return sinks().call(sinks().deliver(payload, channel))


@worker_ready.connect
def _ready(**_: Any) -> None:
    home = os.environ.get(HOME_VARIABLE)
    if home:
        (Path(home) / f"ready-{os.getpid()}").touch()


# --- the benchmark side --------------------------------------------------------------------------------------------


def redis_client() -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)


def delete_bench_keys() -> int:
    """Every key under the benchmark's prefix in its db, and nothing else."""
    client = redis_client()
    try:
        keys = list(client.scan_iter(match=f"{KEY_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def broker_backlog() -> dict[str, int]:
    """Messages waiting in the queue, and taken by a worker but never acked (restored after the timeout)."""
    client = redis_client()
    try:
        return {
            "queued": int(client.llen(f"{KEY_PREFIX}{QUEUE}")),
            "unacked": int(client.hlen(f"{KEY_PREFIX}unacked")),
        }
    finally:
        client.close()


def redis_process() -> psutil.Process | None:
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "redis-server":
            return process
    return None


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


class CeleryWorker:
    """`celery worker` in a subprocess (prefork, one child per core), started, waited for, killed or stopped."""

    def __init__(self, home: Path, visibility_timeout: float) -> None:
        self.home = home
        self.visibility_timeout = visibility_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        for ready in self.home.glob("ready-*"):
            ready.unlink()
        self.starts += 1
        env = {
            **os.environ,
            HOME_VARIABLE: str(self.home),
            VISIBILITY_VARIABLE: str(self.visibility_timeout),
            "PYTHONPATH": str(ROOT),
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.celery_compare:celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--queues",
            QUEUE,
            "--hostname",
            f"herald-bench-{uuid.uuid4().hex[:6]}@%h",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with (self.home / "worker.log").open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not any(self.home.glob("ready-*")):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {self.home / 'worker.log'}")
            time.sleep(0.1)

    def processes(self) -> list[psutil.Process]:
        assert self.process is not None
        main = psutil.Process(self.process.pid)
        return [main, *main.children(recursive=True)]

    def kill(self) -> int:
        """SIGKILL the main process and every pool child at once (an OOM kill, a lost machine); how many died."""
        victims = self.processes()
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.send_signal(signal.SIGKILL)
        psutil.wait_procs(victims, timeout=10)
        assert self.process is not None
        self.process.wait()
        return len(victims)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM): finish what runs, give back what was prefetched."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def read_journal(home: Path, ids: set[str]) -> tuple[Counter[tuple[str, str]], float]:
    """Deliveries per (channel, notification) among `ids`, and the time of the last one."""
    counts: Counter[tuple[str, str]] = Counter()
    last = 0.0
    for path in home.glob("journal-*.log"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in ids:
                counts[(parts[0], parts[1])] += 1
                last = max(last, float(parts[2]))
    return counts, last


def enqueue(payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        for channel in ("push", "email"):
            deliver.apply_async((payload, channel), queue=QUEUE)


def payloads_for(run: str, count: int) -> list[dict[str, Any]]:
    from bench.pipeline import notification

    return [notification(run, index).model_dump(mode="json") for index in range(count)]


@dataclass
class CeleryBatch:
    count: int
    seconds: float
    delivered: int
    duplicates: int
    worker_cpu: float
    broker_cpu: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.rate, 2),
            "deliveries": self.delivered,
            "duplicates": self.duplicates,
            "worker_cpu_ms_each": round(1000 * self.worker_cpu / self.count, 3),
            "redis_cpu_ms_each": round(1000 * self.broker_cpu / self.count, 3),
        }


def celery_batch(worker: CeleryWorker, run: str, count: int, *, timeout: float = 600) -> CeleryBatch:
    """Enqueue `count` notifications (two tasks each) and wait for all two deliveries of each in the journal."""
    payloads = payloads_for(run, count)
    ids = {str(p["notification_id"]) for p in payloads}
    broker = redis_process()
    processes = worker.processes()
    worker_before = cpu_seconds(processes)
    broker_before = cpu_seconds([broker]) if broker else 0.0
    started = time.time()
    enqueue(payloads)
    deadline = time.monotonic() + timeout
    while True:
        counts, last = read_journal(worker.home, ids)
        if len(counts) >= 2 * count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"Celery delivered {len(counts)} of {2 * count} within {timeout:.0f}s")
        time.sleep(0.05)
    worker_cpu = cpu_seconds(processes) - worker_before
    broker_cpu = (cpu_seconds([broker]) - broker_before) if broker else 0.0
    return CeleryBatch(
        count,
        last - started,
        len(counts),
        sum(n - 1 for n in counts.values()),
        worker_cpu,
        broker_cpu,
    )


def kill_run(home: Path, count: int, visibility_timeout: float, *, quiet_seconds: float) -> dict[str, Any]:
    """Start a fresh worker, enqueue `count` notifications, SIGKILL the worker half-way, restart it, and count.

    Waits until every delivery happened or nothing moved for `quiet_seconds` with the queue empty (and, with a
    short visibility timeout, at least that timeout plus a margin, so restored messages had their chance).
    """
    delete_bench_keys()
    worker = CeleryWorker(home, visibility_timeout)
    worker.start()
    try:
        celery_batch(worker, f"kill-warm-{uuid.uuid4().hex[:6]}", 20)  # every child has its sinks open
        payloads = payloads_for(f"kill-{uuid.uuid4().hex[:6]}", count)
        ids = {str(p["notification_id"]) for p in payloads}
        expected = 2 * count
        enqueue(payloads)
        while len(read_journal(home, ids)[0]) < expected // 2:
            time.sleep(0.02)
        killed_at = time.monotonic()
        before_kill = len(read_journal(home, ids)[0])
        killed = worker.kill()
        at_kill = broker_backlog()
        worker.start()
        earliest_end = killed_at + (visibility_timeout + 10 if visibility_timeout < quiet_seconds * 4 else 0)
        last_change, seen = time.monotonic(), -1
        while True:
            counts, _ = read_journal(home, ids)
            total = sum(counts.values())
            now = time.monotonic()
            if total != seen:
                seen, last_change = total, now
            if len(counts) >= expected and now >= earliest_end:
                break
            backlog = broker_backlog()
            if backlog["queued"] == 0 and now - last_change > quiet_seconds and now >= earliest_end:
                break
            time.sleep(0.2)
        counts, _ = read_journal(home, ids)
        after = broker_backlog()
    finally:
        worker.stop()
    duplicated = {key: n for key, n in counts.items() if n > 1}
    return {
        "visibility_timeout_seconds": visibility_timeout,
        "notifications": count,
        "deliveries_expected": expected,
        "delivered_before_kill": before_kill,
        "processes_killed": killed,
        "broker_at_kill": at_kill,
        "deliveries_missing": expected - len(counts),
        "notifications_missing_a_channel": sum(
            1 for nid in ids if not all((channel, nid) in counts for channel in ("push", "email"))
        ),
        "deliveries_duplicated": len(duplicated),
        "extra_deliveries": sum(n - 1 for n in duplicated.values()),
        "unacked_left_in_broker": after["unacked"],
        # Neither delivered, nor queued, nor waiting unacked: gone for good.
        "deliveries_lost_for_good": max(0, expected - len(counts) - after["unacked"] - after["queued"]),
        "waited_after_kill_seconds": round(time.monotonic() - killed_at, 1),
    }


def kill_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the kill runs of one visibility timeout, and each run."""
    total = {
        key: sum(int(run[key]) for run in runs)
        for key in (
            "deliveries_expected",
            "deliveries_missing",
            "notifications_missing_a_channel",
            "deliveries_lost_for_good",
            "unacked_left_in_broker",
            "deliveries_duplicated",
            "extra_deliveries",
        )
    }
    return {
        "visibility_timeout_seconds": runs[0]["visibility_timeout_seconds"],
        "kills": len(runs),
        **total,
        "waited_after_kill_seconds": max(run["waited_after_kill_seconds"] for run in runs),
        "runs": runs,
    }


@contextlib.contextmanager
def celery_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="herald-bench-celery-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def prepare_celery_store(home: Path) -> None:
    from bench.pipeline import prepare
    from bench.stack import bench_only_settings
    from herald.adapters.store import Store

    store = await Store.open(bench_only_settings(home=home, auth=False).resolved_database_url)
    try:
        await prepare(store)
    finally:
        await store.close()


async def run(count: int, rounds: int, warmup: int, kill_repeats: int) -> dict[str, Any]:
    from bench.pipeline import USERS, notify_one, prepare
    from bench.stack import console, embedded_stack, measure, progress_bar, settle

    load_at_start = round(os.getloadavg()[0], 2)
    leftover = delete_bench_keys()
    if leftover:
        console.print(f"removed {leftover} keys a previous run left under {KEY_PREFIX}")
    herald_batches = []
    celery_batches: list[CeleryBatch] = []
    herald_delivered = 0
    with celery_home() as home:
        await prepare_celery_store(home)
        async with embedded_stack(ack_users=USERS, prepare=prepare) as stack:
            worker = CeleryWorker(home, DEFAULT_VISIBILITY_TIMEOUT)
            await asyncio.to_thread(worker.start)
            try:
                with progress_bar() as progress:
                    await measure(
                        stack, warmup, notify_one(stack, "warm"), in_flight=IN_FLIGHT, progress=progress, label="warm"
                    )
                await asyncio.to_thread(celery_batch, worker, "warm", warmup)
                for index in range(rounds):
                    run_id = uuid.uuid4().hex[:8]
                    await settle(stack)
                    with progress_bar() as progress:
                        batch, delivered = await measure(
                            stack,
                            count,
                            notify_one(stack, run_id),
                            in_flight=IN_FLIGHT,
                            progress=progress,
                            label=f"Herald, round {index + 1}",
                        )
                    herald_batches.append(batch)
                    herald_delivered += sum(delivered)
                    console.print(f"Herald round {index + 1}: {batch.rate:.1f} notifications/s")
                    await asyncio.sleep(1.0)
                    celery = await asyncio.to_thread(celery_batch, worker, run_id, count)
                    celery_batches.append(celery)
                    console.print(f"Celery round {index + 1}: {celery.rate:.1f} notifications/s")
            finally:
                await asyncio.to_thread(worker.stop)
        # The Herald stack is down: the kill runs have the machine to themselves.
        kills: dict[str, list[dict[str, Any]]] = {}
        for name, timeout in (("default", DEFAULT_VISIBILITY_TIMEOUT), ("short", SHORT_VISIBILITY_TIMEOUT)):
            kills[name] = []
            for attempt in range(kill_repeats):
                console.print(f"Celery kill run {attempt + 1}/{kill_repeats}, visibility timeout {timeout:g}s")
                outcome = await asyncio.to_thread(kill_run, home, count, timeout, quiet_seconds=10.0)
                console.print(outcome)
                kills[name].append(outcome)
    removed = delete_bench_keys()
    herald_rate = sum(b.count for b in herald_batches) / sum(b.seconds for b in herald_batches)
    celery_rate = sum(b.count for b in celery_batches) / sum(b.seconds for b in celery_batches)
    herald_cpu = sum(b.worker_cpu + b.server_cpu for b in herald_batches) / sum(b.count for b in herald_batches)
    celery_cpu = sum(b.worker_cpu + b.broker_cpu for b in celery_batches) / sum(b.count for b in celery_batches)
    return {
        "notifications_per_round": count,
        "rounds": rounds,
        "herald_per_second": round(herald_rate, 2),
        "celery_per_second": round(celery_rate, 2),
        "ratio": round(herald_rate / celery_rate, 3),
        "ratio_per_round": [round(h.rate / c.rate, 3) for h, c in zip(herald_batches, celery_batches, strict=True)],
        "herald_fully_delivered": herald_delivered,
        "celery_deliveries": sum(b.delivered for b in celery_batches),
        "celery_duplicates_clean_run": sum(b.duplicates for b in celery_batches),
        "herald_cpu_ms_each": round(1000 * herald_cpu, 3),
        "celery_cpu_ms_each": round(1000 * celery_cpu, 3),
        "herald": [b.summary() for b in herald_batches],
        "celery": [b.summary() for b in celery_batches],
        "kill_default_timeout": kill_summary(kills["default"]),
        "kill_short_timeout": kill_summary(kills["short"]),
        "redis_keys_removed_after": removed,
        "load_average": [load_at_start, round(os.getloadavg()[0], 2)],
    }


def notes_for(metrics: dict[str, Any], quick: bool) -> list[str]:
    default, short = metrics["kill_default_timeout"], metrics["kill_short_timeout"]
    notes = [
        f"Throughput: Herald {metrics['herald_per_second']} notifications/s, Celery {metrics['celery_per_second']}/s: "
        f"Herald/Celery = {metrics['ratio']} (per round {metrics['ratio_per_round']}). "
        + (
            "Celery is the faster: a Redis pop per send and no record kept, against a durable Temporal history of "
            "every step (dedup, preferences, each delivery, the audit) on the Herald side."
            if metrics["ratio"] < 1
            else "Herald is the faster here."
        ),
        f"CPU per notification: Herald {metrics['herald_cpu_ms_each']:.1f} ms (worker + Temporal dev server), "
        f"Celery {metrics['celery_cpu_ms_each']:.1f} ms (worker and its pool children + redis-server, which is "
        "shared: noisy).",
        f"Load average (1 min) at the start and end of the run: {metrics['load_average'][0]} and "
        f"{metrics['load_average'][1]} on {os.cpu_count()} cores: other work on this shared machine slows both "
        "sides; the rounds are interleaved so it slows them alike.",
        f"Same run, interleaved: {metrics['rounds']} rounds of {metrics['notifications_per_round']} notifications, "
        "Herald then Celery each round, after a warm-up of each; Herald on bench.stack (Temporal dev server + one "
        f"worker subprocess, {IN_FLIGHT} notifications in flight, each awaited to its outcome), Celery enqueueing "
        "two tasks per notification at once and timed to the last delivery in the journal. The Herald side was run "
        "here, not read from the pipeline result.",
        f"Celery setup: celery {_version('celery')}, kombu {_version('kombu')}, Redis broker db {REDIS_DB} with key "
        f"prefix {KEY_PREFIX} (deleted after), task_acks_late, prefetch multiplier 4, prefork pool with "
        f"{CONCURRENCY} children, results ignored. Each task reads preferences and contact from a SQLite Herald "
        "store, applies herald.routing.route and sends through build_channels' push (PushHub, acking client per "
        "user, on an event loop thread in each child) or email (outbox). No dedup, delivery log, audit or fallback.",
        f"Worker killed {default['kills']} time(s) per setting: SIGKILL to the main process and its {CONCURRENCY} "
        f"pool children when half of the batch's {default['deliveries_expected'] // default['kills']} deliveries "
        "had happened, then started again at once.",
        f"Default visibility timeout ({default['visibility_timeout_seconds']:g} s), over the kills: deliveries not "
        f"made {default['waited_after_kill_seconds']:g} s after the kill: {default['deliveries_missing']} "
        f"({default['notifications_missing_a_channel']} notifications short of a channel), gone for good: "
        f"{default['deliveries_lost_for_good']}, duplicates: {default['extra_deliveries']}. Messages left unacked "
        f"in Redis: {default['unacked_left_in_broker']}; the restart does not bring them back, the timeout does, an "
        f"hour later, and then {_pending_duplicates(default)} of them, which had run before the kill, run again.",
        f"{short['visibility_timeout_seconds']:g} s visibility timeout, over the kills: deliveries never made: "
        f"{short['deliveries_missing']} (gone for good: {short['deliveries_lost_for_good']}), deliveries made "
        f"twice: {short['deliveries_duplicated']} ({short['extra_deliveries']} extra sends: tasks that had run but "
        "whose late ack died with the worker, run again when the timeout gave them back).",
        "Gone for good means neither delivered, nor queued, nor unacked: kombu's Redis transport takes a message "
        "with BRPOP and records it as unacked with a second command, so a kill between the two loses it "
        "(celery/kombu#305 and celery/celery#4354 describe such losses).",
        "Duplicates are counted from a journal: the acking push client appends a line on receipt, the email task "
        "after the outbox write (the outbox itself overwrites by notification id, so it would hide them).",
    ]
    if quick:
        notes.append("--quick: a smoke run, not the benchmark's size")
    return notes


def _pending_duplicates(kills: dict[str, Any]) -> int:
    """Unacked messages whose task had already run: what the visibility timeout will send a second time."""
    waiting = kills["deliveries_missing"] - kills["deliveries_lost_for_good"]
    return max(0, int(kills["unacked_left_in_broker"]) - int(waiting))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main() -> None:
    from bench.stack import run_main

    parser = argparse.ArgumentParser(prog="python -m bench.celery_compare", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 notifications, one round: a smoke run")
    args = parser.parse_args()
    count, rounds, warmup, kill_repeats = (100, 1, 20, 1) if args.quick else (1000, 2, 50, 3)

    async def go() -> None:
        metrics = await run(count, rounds, warmup, kill_repeats)
        name = "celery-quick" if args.quick else "celery"
        path = save_result(
            name,
            metrics,
            targets={},
            notes=notes_for(metrics, args.quick),
        )
        print(f"celery: Herald/Celery {metrics['ratio']}; wrote {path}", flush=True)

    run_main(go())


if __name__ == "__main__":
    main()
