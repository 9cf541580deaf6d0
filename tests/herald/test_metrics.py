"""Prometheus metrics: Herald's own counters move with real notifications; the API and the worker expose them."""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.digest import DigestActivities
from herald.adapters.metrics import REGISTRY, serve_metrics
from herald.adapters.store import Store
from herald.api.app import create_app
from herald.models import AgentNotification, ChannelName, Contact, DigestRecord, NotificationStatus, Priority
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness
from tests.fakes.http import FakeHTTPServer
from tests.starter.cli import HERALD, clean_env


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """How much samples moved between the start of a block and now."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self._samples = samples
        self._before = [sample(name, **labels) for name, labels in samples]

    def __call__(self) -> list[float]:
        return [
            sample(name, **labels) - before for (name, labels), before in zip(self._samples, self._before, strict=True)
        ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def scrape(url: str, process: asyncio.subprocess.Process | None = None) -> str:
    """The exposition at `url`, once something listens there."""
    async with httpx.AsyncClient() as client:
        for _ in range(400):
            if process is not None and process.returncode is not None:
                raise AssertionError(f"the worker exited ({process.returncode})")
            try:
                response = await client.get(url)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
                continue
            assert response.status_code == 200
            return response.text
    raise AssertionError(f"nothing listened at {url}")


def value(text: str, series: str) -> float | None:
    """The value of one series (`name{labels}` exactly as exposed) in a text exposition."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_a_delivered_notification_moves_the_counters(herald: Harness) -> None:
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    moved = Delta(
        ("herald_notifications_total", {"status": "delivered", "priority": "high"}),
        ("herald_deliveries_total", {"channel": "email", "result": "delivered"}),
        ("herald_delivery_latency_seconds_count", {"channel": "email"}),
        ("herald_fallbacks_total", {"channel": "email", "fallback_for": "push"}),
    )
    note = AgentNotification(agent_id="a", user_id="ada", title="t", priority=Priority.high, channels=["email"])
    assert (await (await herald.client.notify(note)).outcome()).status is NotificationStatus.delivered
    assert moved() == [1, 1, 1, 0]
    assert sample("herald_delivery_latency_seconds_sum", channel="email") > 0


async def test_retries_and_fallbacks_are_counted(herald: Harness, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script(f"/flaky-{uuid.uuid4().hex[:6]}", 503, 200)
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com", webhook_url=url))
    moved = Delta(
        ("herald_delivery_retries_total", {"channel": "webhook"}),
        ("herald_deliveries_total", {"channel": "webhook", "result": "failed"}),
        ("herald_fallbacks_total", {"channel": "email", "fallback_for": "push"}),
        ("herald_deliveries_total", {"channel": "push", "result": "failed"}),
    )
    flaky = AgentNotification(agent_id="a", user_id="ada", title="flaky", channels=[ChannelName.webhook])
    unreached = AgentNotification(agent_id="a", user_id="ada", title="nobody online", channels=[ChannelName.push])
    outcomes = [await (await herald.client.notify(n)).outcome() for n in (flaky, unreached)]
    assert [o.status for o in outcomes] == [NotificationStatus.delivered, NotificationStatus.delivered]
    assert outcomes[1].channels[ChannelName.email].fallback_for is ChannelName.push
    assert moved() == [1, 1, 1, 1]


async def test_digest_sizes_are_observed(store: Store) -> None:
    moved = Delta(("herald_digest_size_count", {}), ("herald_digest_size_sum", {}))
    await DigestActivities(store).record_digest(DigestRecord(digest_id="d1", notification_ids=["a", "b", "c"]))
    assert moved() == [1, 3]


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(herald.settings, store=herald.store, client=herald.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        yield client


async def test_api_metrics_route_shows_requests_and_events(api: httpx.AsyncClient) -> None:
    missing = 'herald_http_requests_total{method="GET",route="/v1/notifications/{notification_id}",status="404"}'
    before = value((await api.get("/metrics")).text, missing) or 0.0
    assert (await api.get("/v1/notifications/no-such-one")).status_code == 404
    event = await api.post("/v1/events", json={"agent_id": "quiet-agent", "metrics": {"errors": 0}})
    assert event.status_code == 202

    scraped = await api.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert value(text, missing) == before + 1
    assert (value(text, "herald_events_received_total") or 0) >= 1
    assert "herald_events_fired_notifications_total" in text
    assert "process_cpu_seconds_total" in text or "python_info" in text
    assert "no-such-one" not in text, "ids never become labels"


async def test_serve_metrics_answers_on_its_own_port() -> None:
    server, _ = serve_metrics(0)
    try:
        text = await scrape(f"http://127.0.0.1:{server.server_port}/metrics")
        assert "# TYPE herald_deliveries_total counter" in text
    finally:
        server.shutdown()


async def test_worker_process_exposes_herald_and_temporal_metrics(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """`herald worker` with both ports set: its deliveries on one, the Temporal SDK's own metrics on the other."""
    home, queue = tmp_path / "home", f"metrics-{uuid.uuid4().hex[:8]}"
    store = await Store.open(f"sqlite+aiosqlite:///{home / 'herald.db'}")
    await store.users.put_contact("ada", Contact(email="ada@example.com"))
    await store.close()
    herald_port, temporal_port = free_port(), free_port()
    env = clean_env(
        HERALD_HOME=str(home),
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=queue,
        HERALD_RETENTION_SCHEDULE_ID=f"retention-{queue}",
        HERALD_WORKER_METRICS_PORT=str(herald_port),
        HERALD_TEMPORAL_METRICS_PORT=str(temporal_port),
    )
    worker = await asyncio.create_subprocess_exec(
        HERALD, "worker", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
        note = AgentNotification(agent_id="a", user_id="ada", title="t", channels=[ChannelName.email])
        outcome = await asyncio.wait_for((await client.notify(note)).outcome(), 60)
        assert outcome.status is NotificationStatus.delivered
        text = await scrape(f"http://127.0.0.1:{herald_port}/metrics", worker)
        assert value(text, 'herald_deliveries_total{channel="email",result="delivered"}') == 1.0
        assert value(text, 'herald_notifications_total{priority="medium",status="delivered"}') == 1.0
        temporal = await scrape(f"http://127.0.0.1:{temporal_port}/metrics", worker)
        assert "temporal_" in temporal and "herald_" not in temporal
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 60) == 0
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
