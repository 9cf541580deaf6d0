"""The Herald worker: every workflow and activity on one task queue, configured from the environment.

Run it with `python worker.py` or `herald worker`. On SIGTERM (or Ctrl-C) it stops polling, lets the
activities in flight finish for up to HERALD_SHUTDOWN_GRACE_SECONDS, and exits 0. At start it makes sure
the `herald-retention` schedule exists, and serves Prometheus metrics when asked to.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.runtime import PrometheusConfig, TelemetryConfig
from temporalio.runtime import Runtime as TemporalRuntime
from temporalio.worker import Worker

from activities import build_activities
from herald.adapters.channels.assembly import build_channels
from herald.adapters.channels.base import Channel
from herald.adapters.channels.push import PushHub
from herald.adapters.codec import KEY_ID_METADATA, EncryptionCodec
from herald.adapters.logs import configure_logging
from herald.adapters.metrics import serve_metrics
from herald.adapters.store import SchemaOutOfDate, Store
from herald.config import Settings, SettingsError, check_settings
from herald.domain.answers import links_from_settings
from herald.models import ChannelName, RetentionRequest
from herald.services.callbacks import AgentCallbacks
from herald.services.subscriptions import SubscriptionService
from starter.client import connect_temporal
from workflows import ALL_WORKFLOWS
from workflows.retention import RetentionWorkflow

log = logging.getLogger("herald.worker")


@dataclass
class Runtime:
    """What activities need at run time, opened once per process."""

    settings: Settings
    store: Store
    hub: PushHub
    channels: dict[ChannelName, Channel]


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, hub: PushHub | None = None) -> AsyncIterator[Runtime]:
    store = await Store.open(settings.resolved_database_url)
    hub = hub or PushHub(ack_timeout=settings.push.ack_timeout_seconds, queue_size=settings.push.queue_size)
    channels = build_channels(settings, hub, store.users)
    try:
        yield Runtime(settings, store, hub, channels)
    finally:
        for channel in channels.values():
            aclose = getattr(channel, "aclose", None)
            if aclose is not None:
                await aclose()
        await store.close()


def create_worker(
    client: Client,
    runtime: Runtime,
    task_queue: str | None = None,
    workflow_failure_exception_types: Sequence[type[BaseException]] = (),
    extra_workflows: Sequence[type] = (),
    tuning: Mapping[str, Any] | None = None,
) -> Worker:
    """All activities are async, so none blocks the event loop; no thread pool is needed.

    By default a bug in workflow code retries the workflow task until a fixed worker is deployed, as
    Temporal intends; tests pass `[Exception]` so such a bug fails the workflow at once instead.
    `extra_workflows` run beside Herald's own (the benchmarks' empty baseline workflow); `tuning` passes
    Worker options such as `max_cached_workflows` (the benchmarks' experiments).
    """
    return Worker(
        client,
        task_queue=task_queue or runtime.settings.temporal.task_queue,
        workflows=[*ALL_WORKFLOWS, *extra_workflows],
        activities=build_activities(
            runtime.store,
            runtime.channels,
            digest_period_seconds=runtime.settings.delivery.digest_period_seconds,
            throttle_window_seconds=runtime.settings.delivery.throttle_window_seconds,
            answer_links=links_from_settings(runtime.settings),
            callbacks=AgentCallbacks.from_settings(runtime.settings),
            subscriptions=SubscriptionService.from_settings(runtime.store, runtime.settings),
        ),
        workflow_failure_exception_types=workflow_failure_exception_types,
        # On shutdown, activities in flight (a send under way) get this long to finish before they are cancelled.
        graceful_shutdown_timeout=timedelta(seconds=runtime.settings.ops.shutdown_grace_seconds),
        **(tuning or {}),
    )


def retention_schedule(settings: Settings, task_queue: str, schedule_id: str) -> Schedule:
    """Every `retention_interval_seconds` (daily), one RetentionWorkflow; a run still going skips the next."""
    every = timedelta(seconds=settings.retention.interval_seconds)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionRequest(retention_days=settings.retention.days, batch_size=settings.retention.batch_size),
            id=schedule_id,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A server that was down catches up on one missed run at most.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=max(every, timedelta(minutes=1))),
    )


async def _schedule_matches(client: Client, current: Schedule, wanted: Schedule) -> bool:
    """Same interval, workflow, task queue and input: what HERALD_RETENTION_* and HERALD_TASK_QUEUE decide."""
    have, want = current.action, wanted.action
    if not isinstance(have, ScheduleActionStartWorkflow) or not isinstance(want, ScheduleActionStartWorkflow):
        return False
    if [i.every for i in current.spec.intervals] != [i.every for i in wanted.spec.intervals]:
        return False
    if (have.workflow, have.task_queue) != (want.workflow, want.task_queue) or len(have.args) != 1:
        return False
    codec = client.data_converter.payload_codec
    if isinstance(codec, EncryptionCodec):
        # Written with an older key: write it again with the current one, so that the clients' startup check
        # (starter.client.check_codec_matches) keeps working once the old key is dropped.
        [raw] = have.args
        if not isinstance(raw, Payload) or raw.metadata.get(KEY_ID_METADATA) != codec.key_id.encode():
            return False
    try:
        [request] = await client.data_converter.decode(list(have.args), [RetentionRequest])
    except Exception:  # an input this version cannot read: replace it
        return False
    return bool(request == want.args[0])


async def ensure_retention_schedule(
    client: Client, settings: Settings, *, schedule_id: str | None = None, task_queue: str | None = None
) -> ScheduleHandle:
    """Create the retention schedule, or bring an existing one up to date; safe for many workers at once.

    An existing schedule keeps its state (an operator may have paused it); only its spec and action change,
    and only when they differ from the settings.
    """
    schedule_id = schedule_id or settings.retention.schedule_id
    wanted = retention_schedule(settings, task_queue or settings.temporal.task_queue, schedule_id)
    try:
        return await client.create_schedule(schedule_id, wanted)
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(schedule_id)

    async def update(described: ScheduleUpdateInput) -> ScheduleUpdate | None:
        current = described.description.schedule
        if await _schedule_matches(client, current, wanted):
            return None
        log.info("updating schedule %s to the current retention settings", schedule_id)
        return ScheduleUpdate(schedule=dataclasses.replace(wanted, state=current.state))

    await handle.update(update)
    return handle


def temporal_runtime(settings: Settings) -> TemporalRuntime | None:
    """A Temporal runtime exporting the SDK's own metrics (polls, slots, latencies) for Prometheus, when asked."""
    if settings.ops.temporal_metrics_port is None:
        return None
    address = f"{settings.ops.metrics_host}:{settings.ops.temporal_metrics_port}"
    return TemporalRuntime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (by default: on SIGTERM or SIGINT), then shut down gracefully.

    Shutdown stops polling at once and waits for activities in flight, up to the grace period, so a send
    under way finishes and is logged instead of being abandoned to a retry.
    """
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    temporal = temporal_runtime(settings)
    if temporal is not None:  # before the client exists: clients and workers take the default runtime
        TemporalRuntime.set_default(temporal, error_if_already_set=False)
    metrics_server = None
    if settings.ops.worker_metrics_port is not None:
        metrics_server, _ = serve_metrics(settings.ops.worker_metrics_port, settings.ops.metrics_host)
    try:
        client = await connect_temporal(settings)
        try:
            await ensure_retention_schedule(client, settings)
        except Exception as exc:  # the worker's job is the queue; the cleanup can wait for the next start
            log.error("could not create or update the retention schedule (%s)", type(exc).__name__)
        async with open_runtime(settings) as runtime:
            worker = create_worker(client, runtime)
            log.info(
                "worker on %s, namespace %s, task queue %s",
                client.service_client.config.target_host,
                client.namespace,
                settings.temporal.task_queue,
            )
            running = asyncio.create_task(worker.run())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not running.done():
                log.info("stopping: finishing activities in flight (up to %ss)", settings.ops.shutdown_grace_seconds)
                await worker.shutdown()
            await running
            log.info("worker stopped")
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()


def main() -> None:
    settings = Settings()
    try:
        check_settings(settings)
    except SettingsError as exc:
        print(f"herald worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.ops.log_format or "json", settings.ops.log_level)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_worker(settings))
    except SchemaOutOfDate as exc:  # the worker never migrates: `herald db upgrade` first
        print(f"herald worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
