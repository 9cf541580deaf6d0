"""Provider outages the workflow tests don't already cover: a provider that hangs, under load.

Covered elsewhere, and named in the README's Guarantees: 503s then recovery (tests/workflows/test_notification.py
::test_transient_failure_is_retried_then_delivered), a provider that stays down and the fallback
(::test_retries_run_out_then_fallback), Retry-After (::test_rate_limit_waits_for_retry_after) and SendGrid's
429 with X-RateLimit-Reset (tests/channels/test_sendgrid.py::test_429_retries_after_the_rate_limit_reset,
tests/workflows/test_channels_e2e.py::test_rate_limit_then_refused_number_then_fallback).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryPolicy,
    NotificationStatus,
    RetrySettings,
)
from starter import HeraldClient
from tests.conftest import make_settings
from tests.fakes.http import start_fake
from tests.fakes.sendgrid import FakeSendGrid, Reply
from tests.faults.ledger import Ledger
from tests.faults.scenario import FAULT_POLICY, batch, seed_contacts
from worker import create_worker, open_runtime

HUNG_USER = "hung-user"
PATIENT = DeliveryPolicy(
    retry=RetrySettings(
        initial_interval_seconds=0.5, backoff_coefficient=2.0, maximum_interval_seconds=2.0, maximum_retries=30
    ),
    send_timeout_seconds=5.0,
)


async def test_a_hanging_provider_times_out_without_stalling_the_worker(
    temporal_env: WorkflowEnvironment, ledger: Ledger, tmp_path: Path
) -> None:
    """Webhooks hang (the receiver never answers): those sends time out and retry, holding their activity
    slots, while email notifications for everyone else keep flowing through the same worker. When the
    receiver recovers, each hung notification is delivered on a retry: its outcome says delivered once, and the
    receiver sees it at least once and at most once per attempt, always under the same webhook-id (a timed-out
    send is ambiguous, so the sends that timed out may arrive too once the receiver answers)."""
    settings = make_settings(
        tmp_path / "herald",
        SENDGRID_API_KEY="SG.faults",
        SENDGRID_API_HOST=ledger.sendgrid_host,
        webhook_timeout_seconds=1.0,
    )
    queue = f"faults-hang-{uuid.uuid4().hex[:8]}"
    ledger.hanging.add("webhook")
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        await seed_contacts(runtime.store, ledger)
        await runtime.store.users.put_contact(HUNG_USER, Contact(webhook_url=ledger.hook_url(HUNG_USER)))
        client = HeraldClient(temporal_env.client, queue, FAULT_POLICY)
        # Retries enough to keep trying (about a minute) for as long as the flowing batch could take here.
        patient = HeraldClient(temporal_env.client, queue, PATIENT)
        hung = [
            await patient.notify(note.model_copy(update={"user_id": HUNG_USER}))
            for note in batch(5, "hung", [ChannelName.webhook])
        ]
        flowing = batch(40, "flowing", [ChannelName.email])
        handles = [await client.notify(note) for note in flowing]
        done = await asyncio.wait_for(asyncio.gather(*(h.outcome() for h in handles)), 60)

        assert {o.status for o in done} == {NotificationStatus.delivered}
        assert ledger.delivered("email") == len(flowing)
        stuck = [await h.status() for h in hung]
        assert {s.status for s in stuck} == {NotificationStatus.pending}, "the hung ones are still trying"
        assert ledger.held >= 1 and ledger.delivered("webhook") == 0

        ledger.hanging.clear()
        ledger.release.set()
        recovered = await asyncio.wait_for(asyncio.gather(*(h.outcome() for h in hung)), 60)
        attempts = {o.notification_id: await runtime.store.notifications.attempts(o.notification_id) for o in recovered}
    for outcome in recovered:
        webhook = outcome.channels[ChannelName.webhook]
        assert (outcome.status, webhook.status) == (NotificationStatus.delivered, ChannelStatus.delivered)
        *failed, last = attempts[outcome.notification_id]
        assert failed and {a.error_type for a in failed} == {"WebhookTimeout"}
        assert last.result is ChannelStatus.delivered
        # The sends that timed out reached the receiver too, once it answered: a timeout is ambiguous, so the
        # receiver may see a notification more than once, always under the same webhook-id to drop repeats by.
        assert 1 <= ledger.accepted[f"{outcome.workflow_id}/webhook"] <= len(attempts[outcome.notification_id])
    assert set(ledger.accepted) == {f"{n.workflow_id}/email" for n in flowing} | {
        f"{o.workflow_id}/webhook" for o in recovered
    }


async def test_sendgrid_429_waits_until_the_rate_limit_resets(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SendGrid answers 429 with X-RateLimit-Reset three seconds ahead: the retry comes no earlier than that
    (the policy alone would retry after one second), and the email goes out once."""
    sendgrid = FakeSendGrid()
    server, serving, sendgrid.port = await start_fake(sendgrid)
    settings = make_settings(tmp_path / "herald", SENDGRID_API_KEY="SG.faults", SENDGRID_API_HOST=sendgrid.host)
    queue = f"faults-429-{uuid.uuid4().hex[:8]}"
    try:
        async with (
            open_runtime(settings) as runtime,
            create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
        ):
            await runtime.store.users.put_contact("ada", Contact(email="ada@example.com"))
            reset = int(time.time()) + 3
            sendgrid.script(Reply(429, {"X-RateLimit-Reset": str(reset)}), 202)
            client = HeraldClient(temporal_env.client, queue, FAULT_POLICY)
            note = AgentNotification(
                agent_id="fault-agent", user_id="ada", title="limited", channels=[ChannelName.email]
            )
            outcome = await (await client.notify(note)).outcome()
            first, second = await runtime.store.notifications.attempts(note.notification_id)
    finally:
        server.should_exit = True
        await serving
    assert outcome.status is NotificationStatus.delivered
    assert (first.error_type, second.result) == ("SendGridRateLimited", ChannelStatus.delivered)
    assert second.started_at.timestamp() >= reset - 0.05, "the retry waited for the reset SendGrid named"
    assert len(sendgrid.requests) == 2
