"""Slack through the real slack-sdk AsyncWebClient against a loopback fake of the Web API (chat.postMessage,
chat.update), and the Block Kit it is sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from herald.adapters.channels.assembly import build_channels, providers
from herald.adapters.channels.base import MAX_RETRY_AFTER_SECONDS, OutboundMessage
from herald.adapters.channels.messaging import ChatContent, buttons, slack_escape
from herald.adapters.channels.push import PushHub
from herald.adapters.channels.slack import SlackChannel, classify_slack_error
from herald.adapters.store import Store
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.models import Action, AgentNotification, ChannelName, Contact, Priority
from tests.conftest import make_settings
from tests.fakes.http import start_fake
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-test-token"
MEMBER = "U024BE7LH"
LINK_BASE = "https://herald.example.com"
ACTIONS = [Action(id="approve", label="Approve"), Action(id="deny", label="Deny")]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(TOKEN)
    server, task, fake.port = await start_fake(fake)
    yield fake
    server.should_exit = True
    await task


@pytest.fixture
async def channel(fake: FakeSlack) -> AsyncIterator[SlackChannel]:
    channel = SlackChannel(TOKEN, api_url=fake.api_url, link_base=LINK_BASE, timeout=5.0)
    yield channel
    await channel.aclose()


def message(contact: Contact | None = None, **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "agent_id": "deploy-agent",
        "user_id": "ada",
        "title": "Deploy <!here> the fix?",
        "body": "Ping <@U999> & see <https://evil.example|your bank>",
        "priority": Priority.high,
        "channels": [ChannelName.slack],
    }
    values.update(fields)
    n = AgentNotification.model_validate(values)
    return OutboundMessage(
        n, ChannelName.slack, f"notification/{n.notification_id}/slack", contact or Contact(slack_user_id=MEMBER)
    )


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


async def test_a_question_is_a_direct_message_with_escaped_text_and_one_button_per_action(
    channel: SlackChannel, fake: FakeSlack
) -> None:
    m = message(actions=ACTIONS)
    result = await channel.send(m)
    [call] = fake.calls
    assert call.method == "chat.postMessage" and call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.body["channel"] == MEMBER  # a DM: the member id is the channel
    blocks = call.body["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "High priority"}}
    section = blocks[1]["text"]
    assert section["type"] == "mrkdwn"
    # Agent text can neither mention anyone nor open a link of its own.
    assert section["text"] == (
        "*Deploy &lt;!here&gt; the fix?*\nPing &lt;@U999&gt; &amp; see &lt;https://evil.example|your bank&gt;"
    )
    assert "<!here>" not in texts(blocks) and "<@U999>" not in texts(blocks) and "<!here>" not in call.body["text"]
    assert (
        blocks[2]["elements"][0]["text"]
        == f"<{LINK_BASE}/v1/notifications/{m.notification.notification_id}|Open in Herald>"
    )
    elements = blocks[3]["elements"]
    assert [(e["action_id"], e["text"]["text"], e["value"]) for e in elements] == [
        ("herald:approve", "Approve", m.notification.notification_id),
        ("herald:deny", "Deny", m.notification.notification_id),
        ("herald:ack", "Seen", m.notification.notification_id),
    ]
    channel_id, ts = result.provider_message_id.split(":") if result.provider_message_id else ("", "")
    assert (channel_id, ts) in fake.messages and channel_id == FakeSlack.dm_channel(MEMBER)


async def test_seen_only_for_critical_or_questions() -> None:
    assert buttons([], Priority.high) == []
    assert buttons([], Priority.critical) == [("ack", "Seen")]
    assert buttons([Action(id="ack", label="Got it")], Priority.low) == [("ack", "Got it")]
    assert slack_escape("a&b<c>d") == "a&amp;b&lt;c&gt;d"


async def test_a_plain_notification_has_no_buttons(channel: SlackChannel, fake: FakeSlack) -> None:
    await channel.send(message())
    assert [b["type"] for b in fake.calls[0].body["blocks"]] == ["header", "section", "context"]


async def test_no_member_id_is_contact_missing_and_nothing_is_sent(channel: SlackChannel, fake: FakeSlack) -> None:
    with pytest.raises(ContactMissing):
        await channel.send(message(Contact(email="ada@example.com")))
    assert fake.calls == []


@pytest.mark.parametrize(
    "error",
    ["invalid_auth", "account_inactive", "user_not_found", "channel_not_found", "not_in_channel", "is_archived"],
)
async def test_slacks_permanent_errors_do_not_retry(channel: SlackChannel, fake: FakeSlack, error: str) -> None:
    fake.fail_next(error)  # HTTP 200 with ok:false, as Slack answers
    with pytest.raises(PermanentDeliveryError) as raised:
        await channel.send(message())
    assert error in str(raised.value) and MEMBER not in str(raised.value)


async def test_ratelimited_waits_for_retry_after_capped(channel: SlackChannel, fake: FakeSlack) -> None:
    fake.fail_next("ratelimited", 429, {"Retry-After": "7"})
    with pytest.raises(TransientDeliveryError) as raised:
        await channel.send(message())
    assert raised.value.type_name == "SlackRateLimited" and raised.value.retry_after == 7.0
    fake.fail_next("ratelimited", 429, {"Retry-After": "86400"})
    with pytest.raises(TransientDeliveryError) as capped:
        await channel.send(message())
    assert capped.value.retry_after == MAX_RETRY_AFTER_SECONDS


async def test_5xx_and_unreachable_retry(channel: SlackChannel, fake: FakeSlack) -> None:
    fake.fail_next(None, 503)
    with pytest.raises(TransientDeliveryError) as raised:
        await channel.send(message())
    assert raised.value.type_name == "SlackUnavailable"
    gone = SlackChannel(TOKEN, api_url="http://127.0.0.1:9/api/", timeout=2.0)
    with pytest.raises(TransientDeliveryError) as unreachable:
        await gone.send(message())
    assert unreachable.value.type_name == "SlackUnreachable"


def test_classification() -> None:
    assert isinstance(classify_slack_error(200, "internal_error"), TransientDeliveryError)
    assert isinstance(classify_slack_error(200, "invalid_blocks"), PermanentDeliveryError)
    assert classify_slack_error(429, None, 3.0).retry_after == 3.0


async def test_conclude_replaces_the_buttons_with_the_decision(channel: SlackChannel, fake: FakeSlack) -> None:
    m = message(actions=ACTIONS)
    sent = await channel.send(m)
    assert sent.provider_message_id is not None
    content = ChatContent(m.notification.title, m.notification.body, m.notification.priority)
    await channel.conclude(sent.provider_message_id, content, "Approve by ada via email, 14:02 UTC", None)
    [update] = fake.calls_to("chat.update")
    channel_id, ts = sent.provider_message_id.split(":")
    assert (update.body["channel"], update.body["ts"]) == (channel_id, ts)
    shown = fake.messages[(channel_id, ts)]
    assert all(b["type"] != "actions" for b in shown["blocks"])
    assert "Approve by ada via email, 14:02 UTC" in texts(shown["blocks"])
    assert shown["text"] == "Approve by ada via email, 14:02 UTC"


async def test_without_a_token_slack_writes_to_the_outbox(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path / "herald")
    assert providers(settings)[ChannelName.slack] == "outbox"
    assert providers(settings.changed(slack_bot_token="xoxb-1"))[ChannelName.slack] == "slack"
    channels = build_channels(settings, PushHub(), store.users)
    m = message(actions=ACTIONS)
    result = await channels[ChannelName.slack].send(m)
    assert result.provider_message_id == f"outbox:slack/{m.notification.notification_id}.json"
    written = json.loads((settings.outbox_dir / "slack" / f"{m.notification.notification_id}.json").read_text())
    assert written["message"]["channel"] == MEMBER and written["message"]["blocks"][3]["type"] == "actions"
