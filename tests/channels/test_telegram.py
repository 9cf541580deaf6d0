"""Telegram through Herald's httpx client against a loopback fake of the Bot API; the chat-binding codes;
`herald telegram link` as a process."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.messaging import ChatContent, telegram_button_index
from herald.adapters.channels.telegram import TelegramChannel, redact_bot_tokens
from herald.adapters.store import Store
from herald.domain.errors import ContactMissing, PermanentDeliveryError, TransientDeliveryError
from herald.domain.telegram import code_key, new_link_code, parse_start
from herald.models import Action, AgentNotification, ChannelName, Contact, Priority
from tests.fakes.http import start_fake
from tests.fakes.telegram import FakeTelegram
from tests.starter.cli import clean_env, run_cli

TOKEN = "123456:ABC-telegram-token"
CHAT = 5550001


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(TOKEN)
    server, task, fake.port = await start_fake(fake)
    yield fake
    server.should_exit = True
    await task


@pytest.fixture
async def channel(fake: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    channel = TelegramChannel(TOKEN, api_url=fake.api_url, link_base="https://herald.example.com", timeout=5.0)
    yield channel
    await channel.aclose()


def message(contact: Contact | None = None, **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "agent_id": "deploy-agent",
        "user_id": "ada",
        "title": "Deploy <i>now</i>?",
        "body": "a & b",
        "priority": Priority.critical,
        "channels": [ChannelName.telegram],
        "actions": [Action(id="approve", label="Approve")],
    }
    values.update(fields)
    n = AgentNotification.model_validate(values)
    key = f"notification/{n.notification_id}/telegram"
    return OutboundMessage(n, ChannelName.telegram, key, contact or Contact(telegram_chat_id=CHAT))


async def test_send_and_conclude(channel: TelegramChannel, fake: FakeTelegram) -> None:
    m = message()
    sent = await channel.send(m)
    [call] = fake.calls
    assert call.body["chat_id"] == CHAT
    assert call.body["text"].startswith("<b>Critical</b>\n<b>Deploy &lt;i&gt;now&lt;/i&gt;?</b>\na &amp; b")
    keyboard = call.body["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [["h:0"], ["h:1"]]
    assert [telegram_button_index(b["callback_data"]) for [b] in keyboard] == [0, 1]
    assert telegram_button_index("h:x") is None and telegram_button_index(None) is None
    # Where the message is, without the chat's id (a private chat's is the person's Telegram id).
    assert sent.provider_message_id is not None and str(CHAT) not in sent.provider_message_id
    assert sent.provider_message_id.startswith("101@")
    content = ChatContent("Deploy", "", Priority.critical)
    await channel.conclude(sent.provider_message_id, content, "Expired", Contact(telegram_chat_id=CHAT + 1))
    assert fake.calls_to("editMessageText") == [], "another chat is bound now: not this message's"
    await channel.conclude(sent.provider_message_id, content, "Expired", Contact(telegram_chat_id=CHAT))
    edited = fake.messages[(CHAT, 101)]
    assert "reply_markup" not in edited and edited["text"].endswith("<i>Expired</i>")


async def test_no_bound_chat_is_contact_missing(channel: TelegramChannel, fake: FakeTelegram) -> None:
    with pytest.raises(ContactMissing):
        await channel.send(message(Contact(email="ada@example.com")))
    assert fake.calls == []


async def test_errors_are_classified_and_never_name_the_token(
    channel: TelegramChannel, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(429, "Too Many Requests: retry after 9", retry_after=9)
    with pytest.raises(TransientDeliveryError) as limited:
        await channel.send(message())
    assert limited.value.retry_after == 9.0
    fake.fail_next(403, "Forbidden: bot was blocked by the user")
    with pytest.raises(PermanentDeliveryError):
        await channel.send(message())
    fake.fail_next(502, "Bad Gateway")
    with pytest.raises(TransientDeliveryError):
        await channel.send(message())
    wrong = TelegramChannel("999:wrong", api_url=fake.api_url, timeout=5.0)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(PermanentDeliveryError) as refused:
            await wrong.send(message())
        gone = TelegramChannel(TOKEN, api_url="http://127.0.0.1:9", timeout=2.0)
        with pytest.raises(TransientDeliveryError) as unreachable:
            await gone.send(message())
    await wrong.aclose()
    await gone.aclose()
    assert "TELEGRAM_BOT_TOKEN" in str(refused.value)
    for text in (str(refused.value), str(unreachable.value), caplog.text):
        assert TOKEN not in text and "999:wrong" not in text


def test_httpx_request_lines_lose_the_token() -> None:
    redact_bot_tokens()
    record = logging.LogRecord(
        "httpx", logging.INFO, "", 0, "HTTP Request: %s %s", ("POST", f"https://x/bot{TOKEN}/m"), None
    )
    for f in logging.getLogger("httpx").filters:
        f.filter(record)
    assert TOKEN not in record.getMessage() and "/bot<redacted>/m" in record.getMessage()


def test_start_codes() -> None:
    code = new_link_code()
    assert parse_start(f"/start {code}") == code and parse_start(f"/start@HeraldBot {code}") == code
    assert (
        parse_start("/start") is None and parse_start("/start short") is None and parse_start(f"/stop {code}") is None
    )
    assert len(code_key(code)) <= 64 and code not in code_key(code)


async def test_a_code_binds_once_and_expires(store: Store) -> None:
    code = new_link_code()
    await store.answers.add_telegram_link(code_key(code), "ada", time.time() + 60)
    assert await store.answers.use_telegram_link(code_key(code)) == "ada"
    assert await store.answers.use_telegram_link(code_key(code)) is None
    old = new_link_code()
    await store.answers.add_telegram_link(code_key(old), "bo", time.time() - 1)
    assert await store.answers.use_telegram_link(code_key(old)) is None


async def test_herald_telegram_link_prints_a_code_that_binds(tmp_path: Any) -> None:
    home = tmp_path / "home"
    home.mkdir()
    await Store.upgrade(f"sqlite+aiosqlite:///{home / 'herald.db'}")
    user = f"ada-{uuid.uuid4().hex[:6]}"
    code, out, err = await run_cli(clean_env(HERALD_HOME=str(home)), "telegram", "link", user)
    assert code == 0, err
    command, given = out.split()
    assert command == "/start" and parse_start(out) == given and "works once" in err
    store = await Store.open(f"sqlite+aiosqlite:///{home / 'herald.db'}")
    try:
        assert await store.answers.use_telegram_link(code_key(given)) == user
    finally:
        await store.close()
    code, _, err = await run_cli(clean_env(HERALD_HOME=str(home)), "telegram", "link", "not a user")
    assert code == 2 and "user:" in err
