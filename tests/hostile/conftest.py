"""A live Herald as it runs in production: `herald worker` and `herald api` processes (auth on, JSON logs) on
the session's Temporal dev server, a SQLite store, real tokens. Hostile tests talk to it over loopback HTTP
and read its processes' log output afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from herald.adapters.codec import CodecKey
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.channels.test_websocket import serve
from tests.conftest import FAST_POLICY, WEBHOOK_SECRET, make_settings
from worker import create_worker, open_runtime

ADMIN_KEY = "admin-" + "q" * 40
CODEC_KEY = CodecKey("hostile", bytes(range(100, 132)))
HERALD = str(Path(sys.executable).parent / "herald")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveStack:
    """Where the processes listen, who may call them, and what they logged."""

    url: str
    home: Path
    task_queue: str
    temporal: Client
    tokens: dict[str, str]  # ada, bob (users), support-agent, other-agent (agents), admin
    env: dict[str, str]
    logs: list[Path] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.home / 'herald.db'}"

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.logs if path.exists())

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line both processes wrote; a line that is not JSON fails the test (logs are JSON)."""
        lines = []
        for line in self.log_text().splitlines():
            if line.strip():
                lines.append(json.loads(line))
        return lines

    def secrets(self) -> list[str]:
        """Everything that must never appear in a log line, an error body or a workflow history."""
        return [*self.tokens.values(), *(v for k, v in self.env.items() if k in SECRET_VARIABLES)]

    async def failed_workflows(self) -> list[str]:
        """Workflows of this stack that ended in failure (a workflow bug fails it: the worker is strict)."""
        failed = []
        async for execution in self.temporal.list_workflows(f'TaskQueue="{self.task_queue}"'):
            if execution.status in (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TERMINATED):
                failed.append(execution.id)
        return failed


SECRET_VARIABLES = frozenset(
    {"HERALD_ADMIN_KEY", "HERALD_WEBHOOK_SECRET", "HERALD_CODEC_KEYS", "SENDGRID_API_KEY", "TWILIO_AUTH_TOKEN"}
)


def stack_env(home: Path, temporal: Client, task_queue: str, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEMPORAL_", "SENDGRID_", "TWILIO_"))}
    env.update(
        HERALD_HOME=str(home),
        TEMPORAL_ADDRESS=temporal.service_client.config.target_host,
        TEMPORAL_NAMESPACE=temporal.namespace,
        HERALD_TASK_QUEUE=task_queue,
        HERALD_RETENTION_SCHEDULE_ID=task_queue,
        HERALD_ADMIN_KEY=ADMIN_KEY,
        HERALD_WEBHOOK_SECRET=WEBHOOK_SECRET,
        HERALD_CODEC_KEYS=CODEC_KEY.entry(),
        HERALD_LOG_FORMAT="json",
        HERALD_LOG_LEVEL="INFO",
        HERALD_RETRY_INITIAL_SECONDS="0.2",
        HERALD_RETRY_BACKOFF="2",
        HERALD_RETRY_MAX_INTERVAL_SECONDS="1",
        HERALD_SEND_TIMEOUT_SECONDS="5",
        HERALD_SHUTDOWN_GRACE_SECONDS="2",
    )
    env.update(extra)
    return env


async def wait_for(process: asyncio.subprocess.Process, log: Path, ready: str, what: str) -> None:
    for _ in range(600):
        if process.returncode is not None:
            raise AssertionError(f"{what} exited ({process.returncode}):\n{log.read_text()}")
        if ready in log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not start:\n{log.read_text()}")


@contextlib.asynccontextmanager
async def live_stack(
    temporal_env: WorkflowEnvironment, home: Path, extra: Mapping[str, str] | None = None
) -> AsyncIterator[LiveStack]:
    """Start `herald worker` and `herald api` (its own port) and stop both (SIGTERM) afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    task_queue = f"hostile-{uuid.uuid4().hex[:10]}"
    client = temporal_env.client
    env = stack_env(home, client, task_queue, extra or {})
    port = free_port()
    stack = LiveStack(f"http://127.0.0.1:{port}", home, task_queue, client, {}, env)
    await Store.upgrade(stack.database_url)  # as `herald db upgrade` would: the worker and the API don't
    store = await Store.open(stack.database_url)
    try:
        stack.tokens = {
            "ada": await issue_token(store, "user", "ada"),
            "bob": await issue_token(store, "user", "bob"),
            "support-agent": await issue_token(store, "agent", "support-agent"),
            "other-agent": await issue_token(store, "agent", "other-agent"),
            "admin": ADMIN_KEY,
        }
    finally:
        await store.close()
    processes: list[asyncio.subprocess.Process] = []
    try:
        for name, args, ready in [
            ("worker", ["worker"], "worker on "),
            ("api", ["api", "--port", str(port)], "Uvicorn running"),
        ]:
            log = home / f"{name}.log"
            stack.logs.append(log)
            with log.open("wb") as sink:
                process = await asyncio.create_subprocess_exec(
                    HERALD, *args, env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
                )
            processes.append(process)
            await wait_for(process, log, ready, f"herald {name}")
        yield stack
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        with contextlib.suppress(Exception):
            await client.get_schedule_handle(task_queue).delete()


@pytest.fixture(scope="session")
async def stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveStack]:
    """One live stack for the hostile tests that don't need it idle (starting processes costs seconds)."""
    async with live_stack(temporal_env, tmp_path_factory.mktemp("stack")) as live:
        yield live


@pytest.fixture
def http(stack: LiveStack) -> Iterator[httpx.Client]:
    """A blocking client: sync tests (schemathesis, hypothesis) run while the test loop is idle."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture
async def herald_push(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> AsyncIterator[tuple[HeraldClient, Store, int]]:
    """A worker and the API sharing one push hub (as `herald dev` runs them), the API on a loopback port."""
    settings = make_settings(tmp_path / "herald")
    queue = f"hostile-{uuid.uuid4().hex[:10]}"
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
        app = create_app(settings, store=runtime.store, client=client, hub=runtime.hub)
        async with serve(app) as port:
            yield client, runtime.store, port


@pytest.fixture(scope="module")
async def idle_stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveStack]:
    """A live stack of a module's own, for tests that compare its store before and after: nothing else runs."""
    async with live_stack(temporal_env, tmp_path_factory.mktemp("idle")) as live:
        yield live
