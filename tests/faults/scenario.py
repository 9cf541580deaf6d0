"""What the fault tests share: a batch of notifications to a few users over email (SendGrid) and a webhook,
the worker's environment pointing at the counting providers, submitting with retries, and waiting for outcomes.

Scale with HERALD_FAULT_NOTIFICATIONS (`make soak` runs the long versions); `make test` keeps them short.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from herald.adapters.store import Store
from herald.models import AgentNotification, ChannelName, Contact, DeliveryPolicy, NotificationOutcome, RetrySettings
from starter import HeraldClient
from tests.conftest import WEBHOOK_SECRET
from tests.faults.ledger import Ledger, Tally

USERS = [f"fault-user-{i}" for i in range(8)]
CHANNELS = (ChannelName.email, ChannelName.webhook)

# Retries that outlast the outages these tests cause (a few seconds): 1 + 2 + 4 + 4 + 4 s, as the default
# policy's 30 s, 2 min, 8 min outlast a PostgreSQL restart or a provider's bad minute in production.
FAULT_POLICY = DeliveryPolicy(
    retry=RetrySettings(
        initial_interval_seconds=1.0, backoff_coefficient=2.0, maximum_interval_seconds=4.0, maximum_retries=5
    ),
    # Generous: a send that times out on a busy machine is retried and may reach the provider twice, which
    # would blur what these tests count (duplicates from the fault itself).
    send_timeout_seconds=30.0,
)


def scale(default: int) -> int:
    """How many notifications a fault test sends: its short default, or HERALD_FAULT_NOTIFICATIONS."""
    return int(os.environ.get("HERALD_FAULT_NOTIFICATIONS", default))


def provider_env(ledger: Ledger) -> dict[str, str]:
    """Real SendGrid and signed-webhook channels, both pointed at the ledger."""
    return {
        "SENDGRID_API_KEY": "SG.faults",
        "HERALD_EMAIL_FROM": "herald@example.com",  # SendGrid refuses the default herald@localhost
        "SENDGRID_API_HOST": ledger.sendgrid_host,
        "HERALD_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "HERALD_ALLOW_PRIVATE_WEBHOOKS": "true",
        "HERALD_SEND_TIMEOUT_SECONDS": "30",
        "HERALD_WEBHOOK_TIMEOUT_SECONDS": "30",
        "HERALD_SHUTDOWN_GRACE_SECONDS": "5",
    }


async def seed_contacts(store: Store, ledger: Ledger, users: Sequence[str] = USERS) -> None:
    for user in users:
        await store.users.put_contact(user, Contact(email=f"{user}@example.com", webhook_url=ledger.hook_url(user)))


def batch(count: int, tag: str, channels: Sequence[ChannelName] = CHANNELS) -> list[AgentNotification]:
    """`count` distinct notifications (distinct titles: dedup must not fold them), round-robin over USERS."""
    return [
        AgentNotification(
            agent_id="fault-agent",
            user_id=USERS[i % len(USERS)],
            title=f"{tag} alert {i}",
            body="disk 91% on db-1",
            channels=list(channels),
        )
        for i in range(count)
    ]


async def submit(client: HeraldClient, notes: Sequence[AgentNotification], *, concurrency: int = 32) -> None:
    """Start every notification, retrying a refused start with the same id (safe: one workflow per id)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(note: AgentNotification) -> None:
        async with gate:
            await notify_with_retry(client, note)

    await asyncio.gather(*(one(n) for n in notes))


async def stream(client: HeraldClient, notes: Sequence[AgentNotification], rate: float) -> None:
    """Start the notifications at `rate` a second, as agents working along would, each retried until taken."""
    started = time.monotonic()
    tasks = []
    for i, note in enumerate(notes):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(notify_with_retry(client, note)))
    await asyncio.gather(*tasks)


async def notify_with_retry(client: HeraldClient, note: AgentNotification, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            await client.notify(note)
            return
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def outcomes(
    client: HeraldClient, notes: Sequence[AgentNotification], timeout: float = 90
) -> dict[str, NotificationOutcome]:
    """Every notification's final outcome (each workflow's result), or an error naming those unfinished."""

    async def one(note: AgentNotification) -> NotificationOutcome:
        return await client.get_handle(note.notification_id).outcome()

    results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in notes)), timeout)
    return {n.notification_id: r for n, r in zip(notes, results, strict=True)}


async def connect(address: str) -> Client:
    """A client with Herald's data converter (unencrypted, as the workers here run), retrying while it comes up."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return await Client.connect(address, data_converter=pydantic_data_converter)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def record_result(name: str, counted: Tally, **details: object) -> None:
    """Write what a fault test counted to `$HERALD_FAULT_RESULTS/<name>.json`, with the commit it ran at.

    `make soak` sets the folder (bench/results/faults/): the README's figures come from these files, so each
    figure traces to a run of the code it describes. Unset (as in `make test`), nothing is written.
    """
    folder = os.environ.get("HERALD_FAULT_RESULTS")
    if not folder:
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    # Changes to the code, not the results this run is writing.
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!bench/results"], capture_output=True, text=True, check=False
    )
    document = {
        "name": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit.stdout.strip() + ("+changes" if dirty.stdout.strip() else ""),
        "fault_notifications": os.environ.get("HERALD_FAULT_NOTIFICATIONS", "the short default"),
        "expected_deliveries": counted.expected,
        "delivered": counted.delivered,
        "lost": len(counted.lost),
        "duplicate_sends": counted.duplicate_sends,
        "details": details,
    }
    path = Path(folder) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
