"""Shared fixtures: one real Temporal dev server per session, a fresh worker and task queue per test."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from redis.asyncio import Redis
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from herald.adapters.channels.push import PushConnection
from herald.adapters.store import Store
from herald.config import DEFAULT_CHAT_SCHEMES, Settings, temporal_binary
from herald.domain.search import SEARCH_ATTRIBUTE_KEYS
from herald.models import DeliveryPolicy, RetrySettings
from starter import HeraldClient
from tests.fakes.http import FakeHTTPServer, start_fake
from worker import Runtime, create_worker, open_runtime

WEBHOOK_SECRET = "whsec_" + "c2VjcmV0LWZvci10ZXN0cy1vbmx5LTEyMzQ1Njc4OTA="
POSTGRES_URL = os.environ.get("HERALD_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Short retries, so a test of "retried three times" takes a second, not twelve minutes.
FAST_POLICY = DeliveryPolicy(
    retry=RetrySettings(initial_interval_seconds=0.2, backoff_coefficient=2.0, maximum_interval_seconds=1.0),
    send_timeout_seconds=5.0,
)
# For a look at a notification mid-send: a channel's first attempt is a local activity, whose state the
# workflow shows at its task's heartbeat, 8 s in; the send must outlast that.
PATIENT_POLICY = FAST_POLICY.model_copy(update={"send_timeout_seconds": 30.0})


# Property tests check what holds, never how fast: Hypothesis's deadline (200 ms an example) and its "input
# generation is slow" health check are timed assertions, which fail on a loaded machine (two test workers on
# two cores) with nothing wrong. A test's own @settings still sets its examples and anything else it names.
settings.register_profile("herald", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("herald")

_exit_status: list[int] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, refuse tests that share an id: xdist runs one of them and reports it for all, so the
    others would pass without running (schemathesis's cases do this; make test runs them in one process)."""
    if not hasattr(config, "workerinput"):
        return
    shared = sorted(nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1)
    if shared:
        raise pytest.UsageError(f"tests sharing an id can't run under xdist (run them without -n): {shared[:5]}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown once pytest has reported, keeping its exit status.

    Temporal's Rust core threads can abort CPython's finalization (temporalio/sdk-python#300), which
    would turn a green run into exit 134 after the summary; `herald`'s CLI does the same (skips_teardown).
    """
    if _exit_status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A connection to this machine's Redis; with CI set, a Redis that can't be reached fails the test."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__}) and CI is set")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def fake_http() -> AsyncIterator[FakeHTTPServer]:
    fake = FakeHTTPServer()
    server, task, fake.port = await start_fake(fake)
    yield fake
    server.should_exit = True
    await task


_migrated: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
async def migrated_store_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One SQLite store taken to the head revision as `herald db upgrade` does, once per test process: each test's
    store starts as a copy of it (running the migrations for every test cost a tenth of a second of CPU each)."""
    path = tmp_path_factory.mktemp("migrated") / "herald.db"
    await Store.upgrade(f"sqlite+aiosqlite:///{path}")
    _migrated[:] = [path]


def migrated_sqlite(folder: Path) -> str:
    """The URL of a new SQLite store in `folder` (herald.db), at the head revision: a copy of the template."""
    target = folder / "herald.db"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_migrated[0], target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store for a test that needs one without a worker, at the head revision."""
    store = await Store.open(migrated_sqlite(tmp_path))
    try:
        yield store
    finally:
        await store.close()


@dataclass
class Harness:
    client: HeraldClient
    runtime: Runtime
    settings: Settings

    @property
    def store(self) -> Store:
        return self.runtime.store

    def outbox(self, channel: str) -> Path:
        return self.settings.outbox_dir / channel


def quiet_hours_now() -> str:
    """A UTC quiet-hours window that holds from an hour ago to two hours from now, whenever the test runs (a fixed
    "00:00-23:59" lets a notification through in the last minute of the day)."""
    now = datetime.now(UTC)
    return f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=2)):%H:%M}"


def make_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "webhook_secret": WEBHOOK_SECRET,
        "push_ack_timeout_seconds": 2.0,
        # The fake providers listen on 127.0.0.1, as a receiver on a developer's machine would.
        "allow_private_webhooks": True,
        # The default chat schemes, plus plain-http json:// for the loopback receivers (tests/fakes/http.py).
        "chat_schemes": [*DEFAULT_CHAT_SCHEMES, "json"],
        "auth": False,  # tests of auth turn it on
        # A sender SendGrid accepts: its fake refuses herald@localhost, as SendGrid's mail/send does.
        "email_from": "herald@example.com",
    }
    values.update(overrides)
    if values.get("database_url") is None:
        migrated_sqlite(home)  # the SQLite store the settings name, ready at the head revision
    return Settings.from_flat(values)  # flat names, mapped to their groups; nothing from the environment


@pytest.fixture
async def herald(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    """A real worker (real activities, SQLite store, outbox, push hub, signed webhooks) on its own queue."""
    settings = make_settings(tmp_path / "herald")
    task_queue = f"test-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(settings) as runtime,
        # A bug in workflow code fails the test at once instead of retrying the workflow task forever.
        create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
    ):
        yield Harness(HeraldClient(temporal_env.client, task_queue, FAST_POLICY), runtime, settings)


@pytest.fixture
async def patient_push(temporal_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Harness]:
    """A worker whose push channel waits long for an ack, so a test can look at a notification mid-flight."""
    settings = make_settings(tmp_path / "herald", push_ack_timeout_seconds=60.0)
    task_queue = f"patient-{uuid.uuid4().hex[:12]}"
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, task_queue, workflow_failure_exception_types=[Exception]),
    ):
        yield Harness(HeraldClient(temporal_env.client, task_queue, PATIENT_POLICY), runtime, settings)


async def acking(connection: PushConnection, frames: list[dict[str, Any]] | None = None) -> None:
    """A push client that acks every frame it receives, like the inbox does; keeps them in `frames` if given."""
    while True:
        frame = await connection.receive()
        if frames is not None:
            frames.append(frame)
        connection.ack(frame["notification_id"])
