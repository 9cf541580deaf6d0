"""The Herald worker: every workflow and activity on one task queue, configured from the environment.

Run it with `python worker.py` or `herald worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from herald.channels import Channel, PushHub, build_channels
from herald.config import Settings
from herald.models import ChannelName
from herald.store import Store
from starter.client import connect_temporal
from workflows import ALL_WORKFLOWS


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
    hub = hub or PushHub(ack_timeout=settings.push_ack_timeout_seconds, queue_size=settings.push_queue_size)
    channels = build_channels(settings, hub, store)
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
) -> Worker:
    """All activities are async, so none blocks the event loop; no thread pool is needed.

    By default a bug in workflow code retries the workflow task until a fixed worker is deployed, as
    Temporal intends; tests pass `[Exception]` so such a bug fails the workflow at once instead.
    """
    return Worker(
        client,
        task_queue=task_queue or runtime.settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=build_activities(
            runtime.store, runtime.channels, digest_period_seconds=runtime.settings.digest_period_seconds
        ),
        workflow_failure_exception_types=workflow_failure_exception_types,
    )


async def run_worker(settings: Settings) -> None:
    client = await connect_temporal(settings)
    async with open_runtime(settings) as runtime:
        worker = create_worker(client, runtime)
        logging.getLogger("herald").info(
            "worker on %s, namespace %s, task queue %s",
            settings.temporal_address,
            settings.temporal_namespace,
            settings.task_queue,
        )
        await worker.run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(Settings()))


if __name__ == "__main__":
    main()
