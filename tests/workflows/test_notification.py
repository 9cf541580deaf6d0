"""NotificationWorkflow end to end on the real Temporal dev server, with real activities and channels."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    Contact,
    NotificationStatus,
    Preferences,
    Priority,
)
from tests.conftest import WEBHOOK_SECRET, Harness, acking
from tests.fakes.http import FakeHTTPServer

EMAIL = ChannelName.email
PUSH = ChannelName.push
SMS = ChannelName.sms
WEBHOOK = ChannelName.webhook


def note(**fields: Any) -> AgentNotification:
    values: dict[str, Any] = {"agent_id": "support-agent", "user_id": "user-1", "title": "Error rate 7%"}
    values.update(fields)
    return AgentNotification(**values)


def outbox_files(herald: Harness, channel: str) -> list[dict[str, Any]]:
    directory = herald.outbox(channel)
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))] if directory.exists() else []


async def test_delivers_on_push_and_email(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    frames: list[dict[str, Any]] = []
    with herald.runtime.hub.connect("user-1") as connection:
        client = asyncio.create_task(acking(connection, frames))
        handle = await herald.client.notify(note(body="p95 latency is up", channels=[PUSH, EMAIL]))
        outcome = await handle.outcome()
        client.cancel()

    assert outcome.status is NotificationStatus.delivered
    assert outcome.workflow_id == f"notification/{handle.notification_id}"
    assert {c: r.status for c, r in outcome.channels.items()} == {PUSH: "delivered", EMAIL: "delivered"}
    assert [f["notification_id"] for f in frames] == [handle.notification_id]
    assert frames[0]["title"] == "Error rate 7%"

    [email] = outbox_files(herald, "email")
    assert email["idempotency_key"] == f"notification/{handle.notification_id}/email"
    assert email["message"]["personalizations"][0]["to"][0]["email"] == "ada@example.com"
    assert email["message"]["subject"] == "[MEDIUM] Error rate 7%"

    attempts = await herald.store.notifications.attempts(handle.notification_id)
    assert sorted((a.channel, a.result, a.attempt) for a in attempts) == [
        (EMAIL, ChannelStatus.delivered, 1),
        (PUSH, ChannelStatus.delivered, 1),
    ]
    recorded = await herald.store.notifications.get_outcome(handle.notification_id)
    assert recorded is not None and recorded.status is NotificationStatus.delivered


async def test_burst_of_identical_notifications_delivers_once(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    handles = await asyncio.gather(*(herald.client.notify(note(channels=[EMAIL])) for _ in range(20)))
    outcomes = await asyncio.gather(*(h.outcome() for h in handles))

    statuses = sorted(o.status.value for o in outcomes)
    assert statuses.count("delivered") == 1
    assert statuses.count("suppressed_duplicate") == 19
    [winner] = [o for o in outcomes if o.status is NotificationStatus.delivered]
    assert all(o.duplicate_of == winner.notification_id for o in outcomes if o is not winner)
    assert len(outbox_files(herald, "email")) == 1


async def test_same_notification_id_starts_one_workflow(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    notification = note(channels=[EMAIL])
    first = await herald.client.notify(notification)
    await first.outcome()
    again = await herald.client.notify(notification)
    assert again.workflow_id == first.workflow_id
    assert (await again.outcome()).status is NotificationStatus.delivered
    assert len(await herald.store.notifications.attempts(notification.notification_id)) == 1


async def test_explicit_dedup_key_collapses_different_titles(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    a = await (await herald.client.notify(note(title="Disk 91%", dedup_key="disk", channels=[EMAIL]))).outcome()
    b = await (await herald.client.notify(note(title="Disk 92%", dedup_key="disk", channels=[EMAIL]))).outcome()
    other_user = await (
        await herald.client.notify(note(user_id="user-2", title="Disk 92%", dedup_key="disk", channels=[EMAIL]))
    ).outcome()
    assert a.status is NotificationStatus.delivered
    assert b.status is NotificationStatus.suppressed_duplicate
    assert other_user.status is not NotificationStatus.suppressed_duplicate


async def test_agent_override_beats_default(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com", phone="+14155550100"))
    await herald.store.users.put_preferences(
        "user-1",
        Preferences.model_validate(
            {"default": {"push": False, "email": True}, "agents": {"batch-agent": {"email": False, "push": True}}}
        ),
    )
    frames: list[dict[str, Any]] = []
    with herald.runtime.hub.connect("user-1") as connection:
        client = asyncio.create_task(acking(connection, frames))
        batch = await (await herald.client.notify(note(agent_id="batch-agent", channels=[PUSH, EMAIL]))).outcome()
        other = await (await herald.client.notify(note(agent_id="support-agent", channels=[PUSH, EMAIL]))).outcome()
        client.cancel()

    assert set(batch.channels) == {PUSH}, "batch-agent's entry turns email off and push on"
    assert batch.status is NotificationStatus.delivered
    assert set(other.channels) == {EMAIL}, "other agents follow the default: push off"
    assert [f["agent_id"] for f in frames] == ["batch-agent"]


async def test_sms_only_for_high_and_critical(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com", phone="+14155550100"))
    low = await (await herald.client.notify(note(title="a", priority=Priority.low, channels=[SMS, EMAIL]))).outcome()
    medium = await (await herald.client.notify(note(title="b", priority="medium", channels=[SMS, EMAIL]))).outcome()
    high = await (await herald.client.notify(note(title="c", priority="high", channels=[SMS, EMAIL]))).outcome()

    assert set(low.channels) == {EMAIL} and set(medium.channels) == {EMAIL}
    assert set(high.channels) == {SMS, EMAIL} and high.status is NotificationStatus.delivered
    [sms] = outbox_files(herald, "sms")
    assert sms["message"]["To"] == "+14155550100"
    assert sms["message"]["Body"].startswith("[HIGH] c")


async def test_sms_alone_for_low_priority_is_no_channel(herald: Harness) -> None:
    outcome = await (await herald.client.notify(note(priority="low", channels=[SMS]))).outcome()
    assert outcome.status is NotificationStatus.no_channel
    assert outcome.channels == {}
    assert await herald.store.notifications.attempts(outcome.notification_id) == []


async def test_push_without_connection_falls_through_to_email(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    outcome = await (await herald.client.notify(note(channels=[PUSH]))).outcome()

    assert outcome.status is NotificationStatus.delivered
    push, email = outcome.channels[PUSH], outcome.channels[EMAIL]
    assert (push.status, push.error_type, push.attempt_count) == ("failed", "RecipientNotConnected", 1)
    assert (email.status, email.fallback_for) == ("delivered", PUSH)
    assert len(outbox_files(herald, "email")) == 1


async def test_push_without_connection_rides_on_planned_email(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    outcome = await (await herald.client.notify(note(channels=[PUSH, EMAIL]))).outcome()

    assert outcome.status is NotificationStatus.delivered, "the person was reached by the email push fell to"
    assert set(outcome.channels) == {PUSH, EMAIL}, "no further fallback: email already carries it"
    assert outcome.channels[PUSH].error_type == "RecipientNotConnected"
    assert len(outbox_files(herald, "email")) == 1


async def test_push_joining_an_email_that_fails_is_lost_with_it(herald: Harness) -> None:
    outcome = await (await herald.client.notify(note(channels=[PUSH, EMAIL]))).outcome()  # no contact at all
    assert outcome.status is NotificationStatus.failed
    assert outcome.channels[EMAIL].error_type == "ContactMissing"


async def test_permanent_failure_falls_back_to_next_channel(herald: Harness, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script("/rejects", 400)
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com", webhook_url=url))
    await herald.store.users.put_preferences("user-1", Preferences.model_validate({"default": {"push": False}}))
    outcome = await (await herald.client.notify(note(channels=[WEBHOOK]))).outcome()

    webhook, email = outcome.channels[WEBHOOK], outcome.channels[EMAIL]
    assert (webhook.status, webhook.error_type, webhook.attempt_count) == ("failed", "WebhookRejected", 1)
    assert len(fake_http.received("/rejects")) == 1, "a permanent error is not retried"
    assert (email.status, email.fallback_for) == ("delivered", WEBHOOK)
    assert PUSH not in outcome.channels, "a disabled channel is skipped in the fallback order"
    assert outcome.status is NotificationStatus.delivered


async def test_all_fallbacks_exhausted_fails_and_logs_every_attempt(herald: Harness, fake_http: FakeHTTPServer) -> None:
    """The webhook stays down (503 every time) until its retries run out, then every fallback fails too."""
    url = fake_http.script("/down", *([503] * 8))
    await herald.store.users.put_contact("user-1", Contact(webhook_url=url))  # no email, no phone, nobody connected
    outcome = await (await herald.client.notify(note(channels=[WEBHOOK]))).outcome()

    assert outcome.status is NotificationStatus.failed
    assert {c: r.error_type for c, r in outcome.channels.items()} == {
        WEBHOOK: "WebhookUnavailable",
        PUSH: "RecipientNotConnected",
        EMAIL: "ContactMissing",
    }, "medium priority never falls back to SMS"
    assert len(fake_http.received("/down")) == 4, "the first try and 3 retries, each reaching the receiver"
    logged = await herald.store.notifications.attempts(outcome.notification_id)
    down = "webhook endpoint answered 503"
    assert [(a.channel, a.attempt, a.result, a.error_type, a.error) for a in logged] == [
        (WEBHOOK, 1, ChannelStatus.failed, "WebhookUnavailable", down),
        (WEBHOOK, 2, ChannelStatus.failed, "WebhookUnavailable", down),
        (WEBHOOK, 3, ChannelStatus.failed, "WebhookUnavailable", down),
        (WEBHOOK, 4, ChannelStatus.failed, "WebhookUnavailable", down),
        (PUSH, 1, ChannelStatus.failed, "RecipientNotConnected", "the user has no live push connection"),
        (EMAIL, 1, ChannelStatus.failed, "ContactMissing", "the user has no email address on file"),
    ], "every attempt, in order, with its error"


async def test_transient_failure_is_retried_then_delivered(herald: Harness, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script("/flaky", 503, 503, 200)
    await herald.store.users.put_contact("user-1", Contact(webhook_url=url))
    handle = await herald.client.notify(note(channels=[WEBHOOK], body="details"))
    outcome = await handle.outcome()

    assert outcome.status is NotificationStatus.delivered
    assert outcome.channels[WEBHOOK].attempt_count == 3
    logged = await herald.store.notifications.attempts(handle.notification_id)
    assert [(a.attempt, a.result, a.error_type) for a in logged] == [
        (1, "failed", "WebhookUnavailable"),
        (2, "failed", "WebhookUnavailable"),
        (3, "delivered", None),
    ]
    requests = fake_http.received("/flaky")
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {f"notification/{handle.notification_id}/webhook"}
    last = requests[-1]
    signed = f"{last.headers['webhook-id']}.{last.headers['webhook-timestamp']}.".encode() + last.body
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert last.headers["webhook-signature"] == f"v1,{expected}"
    assert json.loads(last.body)["data"]["body"] == "details"


async def test_rate_limit_waits_for_retry_after(herald: Harness, fake_http: FakeHTTPServer) -> None:
    url = fake_http.script("/limited", (429, {"Retry-After": "2"}), 200)
    await herald.store.users.put_contact("user-1", Contact(webhook_url=url))
    outcome = await (await herald.client.notify(note(channels=[WEBHOOK]))).outcome()

    assert outcome.status is NotificationStatus.delivered
    first, second = await herald.store.notifications.attempts(outcome.notification_id)
    assert first.error_type == "WebhookRateLimited"
    waited = (second.started_at - first.finished_at).total_seconds()
    assert waited >= 1.5, f"the retry came {waited:.2f}s after a 429 that asked for 2s (backoff alone is 0.2s)"


async def test_the_outcome_counts_the_retries_and_names_the_fallback(
    herald: Harness, fake_http: FakeHTTPServer
) -> None:
    """The outcome's view of a channel whose retries run out (the providers' view: test_channels_e2e.py)."""
    url = fake_http.script("/always-503", 503, 503, 503, 503, 503)
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com", webhook_url=url))
    await herald.store.users.put_preferences("user-1", Preferences.model_validate({"default": {"push": False}}))
    outcome = await (await herald.client.notify(note(channels=[WEBHOOK]))).outcome()

    assert outcome.channels[WEBHOOK].attempt_count == 4, "3 retries after the first try"
    assert outcome.channels[EMAIL].status is ChannelStatus.delivered
    assert outcome.channels[EMAIL].fallback_for is WEBHOOK
    assert outcome.status is NotificationStatus.delivered


async def test_critical_escalates_until_two_channels_confirm(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com", phone="+14155550100"))
    outcome = await (await herald.client.notify(note(priority="critical", channels=[EMAIL]))).outcome()

    assert outcome.status is NotificationStatus.confirmed
    assert set(outcome.delivered_channels) == {EMAIL, SMS}
    assert outcome.channels[SMS].escalation
    assert outcome.channels[PUSH].error_type == "RecipientNotConnected"
    assert outcome.ops_alert is None
    assert await herald.store.notifications.ops_alerts(outcome.notification_id) == []


async def test_critical_with_one_working_channel_is_unconfirmed_with_ops_alert(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    outcome = await (await herald.client.notify(note(priority="critical", channels=[PUSH, EMAIL]))).outcome()

    assert outcome.status is NotificationStatus.unconfirmed
    assert outcome.delivered_channels == [EMAIL]
    assert set(outcome.channels) == {PUSH, EMAIL, SMS, WEBHOOK}, "every enabled channel was tried"
    assert outcome.channels[SMS].error_type == outcome.channels[WEBHOOK].error_type == "ContactMissing"
    [alert] = await herald.store.notifications.ops_alerts(outcome.notification_id)
    assert alert["kind"] == "critical_unconfirmed"
    assert outcome.ops_alert and "1 of the 2" in outcome.ops_alert


async def test_critical_on_two_working_channels_is_confirmed_without_escalation(herald: Harness) -> None:
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    frames: list[dict[str, Any]] = []
    with herald.runtime.hub.connect("user-1") as connection:
        client = asyncio.create_task(acking(connection, frames))
        outcome = await (await herald.client.notify(note(priority="critical", channels=[PUSH, EMAIL]))).outcome()
        client.cancel()
    assert outcome.status is NotificationStatus.confirmed
    assert set(outcome.channels) == {PUSH, EMAIL}


async def test_status_query_shows_live_channel_state(patient_push: Harness) -> None:
    herald = patient_push
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    with herald.runtime.hub.connect("user-1") as connection:
        handle = await herald.client.notify(note(channels=[PUSH, EMAIL]))
        frame = await connection.receive()  # received, not yet acked: push is still pending
        live = await handle.status()  # answered at the workflow task's heartbeat, the push still in flight
        assert live.status is NotificationStatus.pending
        assert live.channels[PUSH].status is ChannelStatus.pending
        connection.ack(frame["notification_id"])
        outcome = await handle.outcome()
    assert outcome.status is NotificationStatus.delivered
    assert (await handle.status()).status is NotificationStatus.delivered


async def test_a_critical_notification_no_channel_can_carry_alerts_ops(herald: Harness) -> None:
    """Every channel off for the person: a critical notification ends no_channel with an ops alert.

    It used to end no_channel silently (only a critical question alerted), so a critical alert could reach
    nobody without anyone being told."""
    off = {"default": {"push": False, "email": False, "sms": False, "webhook": False}}
    await herald.store.users.put_contact("user-1", Contact(email="ada@example.com"))
    await herald.store.users.put_preferences("user-1", Preferences.model_validate(off))
    outcome = await (await herald.client.notify(note(priority="critical", channels=[EMAIL]))).outcome()
    assert outcome.status is NotificationStatus.no_channel
    [alert] = await herald.store.notifications.ops_alerts(outcome.notification_id)
    assert alert["kind"] == "critical_no_channel"
    assert outcome.ops_alert == "critical notification reached nobody: no channel is enabled for it"
