"""Telegram: a message to the person's bound chat (sendMessage) with an inline keyboard of the actions, edited
(editMessageText) once the question has ended; over the Bot API with Herald's own httpx client.

The bot token is part of every Bot API URL, so neither a URL nor httpx's text ever reaches a message, and
httpx's own request log line has the token cut out. Telegram's verdicts: 429 waits for `retry_after`; 400
(chat not found), 401 (token) and 403 (the person blocked the bot) are permanent; 5xx and timeouts retry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

import httpx

from herald.adapters.channels.base import OutboundMessage, SendResult, cap_retry_after
from herald.adapters.channels.messaging import ChatContent, telegram_payload, telegram_text
from herald.adapters.channels.render import notification_link
from herald.adapters.netguard import tls_context
from herald.domain.bounds import MAX_PROVIDER_ID_CHARS, bound_text
from herald.domain.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName, Contact

_BOT_PATH = re.compile(r"/bot[^/\s]+/")


class _RedactBotToken(logging.Filter):
    """httpx logs each request's URL at INFO: the token is cut out of it before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = _BOT_PATH.sub("/bot<redacted>/", str(record.msg))
        return True


_REDACT = _RedactBotToken()


def redact_bot_tokens() -> None:
    """Install the redaction on httpx's loggers once (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


def classify_telegram_error(status: int, code: int | None, retry_after: float | None = None) -> DeliveryError:
    what = f"telegram answered {status}" + (f" with error_code {code}" if code is not None and code != status else "")
    if status == 429 or code == 429:
        return TransientDeliveryError(what, retry_after=retry_after, type_name="TelegramRateLimited")
    if status >= 500:
        return TransientDeliveryError(what, type_name="TelegramUnavailable")
    if status == 401 or status == 404:  # the Bot API answers an unknown token with 401 or 404
        return PermanentDeliveryError(f"{what}: check TELEGRAM_BOT_TOKEN", type_name="TelegramAuth")
    if status in (400, 403):
        return PermanentDeliveryError(
            f"{what}: Telegram cannot reach the bound chat (blocked, left or deleted)", type_name="TelegramChatRefused"
        )
    return PermanentDeliveryError(what, type_name="TelegramRejected")


def chat_digest(chat_id: int) -> str:
    """A chat's id as the delivery log and workflow history keep it: hashed (a private chat's id is the person's
    Telegram user id), so a click's chat can be matched without the id being stored."""
    return hashlib.sha256(f"telegram-chat:{chat_id}".encode()).hexdigest()[:24]


def telegram_message_id(chat_id: int, message_id: int) -> str:
    """The attempt's provider_message_id: `<message_id>@<chat digest>`."""
    return bound_text(f"{message_id}@{chat_digest(chat_id)}", MAX_PROVIDER_ID_CHARS) or ""


def parse_telegram_message_id(value: str, chat_id: int | None) -> int | None:
    """The message id, when the provider id is of a message in `chat_id` (the contact's bound chat)."""
    message, sep, digest = value.partition("@")
    if not sep or chat_id is None or not hmac.compare_digest(digest, chat_digest(chat_id)):
        return None
    try:
        return int(message)
    except ValueError:
        return None


class TelegramBotApi:
    """The few Bot API methods Herald calls, each a JSON POST; DeliveryError when Telegram says no."""

    def __init__(self, token: str, *, api_url: str = "https://api.telegram.org", timeout: float = 10.0) -> None:
        self._base = f"{api_url.rstrip('/')}/bot{token}/"
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        redact_bot_tokens()

    async def call(self, method: str, fields: dict[str, Any], timeout: float | None = None) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, verify=tls_context())
        try:
            response = await self._client.post(self._base + method, json=fields, timeout=timeout or self._timeout)
        except httpx.TimeoutException:
            raise TransientDeliveryError("telegram timed out", type_name="TelegramTimeout") from None
        except httpx.HTTPError as exc:  # its text holds the URL, so the token: the type only
            raise TransientDeliveryError(
                f"telegram unreachable ({type(exc).__name__})", type_name="TelegramUnreachable"
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        if response.status_code == 200 and data.get("ok") is True:
            return data.get("result")
        code = data.get("error_code") if isinstance(data.get("error_code"), int) else None
        parameters = data.get("parameters")
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        retry_after = cap_retry_after(float(wait)) if isinstance(wait, int | float) else None
        raise classify_telegram_error(response.status_code, code, retry_after)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class TelegramChannel:
    name = ChannelName.telegram

    def __init__(
        self,
        token: str,
        *,
        api_url: str = "https://api.telegram.org",
        link_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._api = TelegramBotApi(token, api_url=api_url, timeout=timeout)
        self._link_base = link_base
        self._timeout = timeout

    async def send(self, message: OutboundMessage) -> SendResult:
        link = notification_link(self._link_base, message.notification.notification_id)
        payload = telegram_payload(message, link)  # raises ContactMissing without a bound chat
        result = await self._api.call("sendMessage", payload, message.provider_timeout(self._timeout))
        chat = result.get("chat") if isinstance(result, dict) else None
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if not isinstance(chat, dict) or not isinstance(chat.get("id"), int) or not isinstance(message_id, int):
            raise TransientDeliveryError("telegram answered ok without the message", type_name="TelegramOdd")
        return SendResult(provider_message_id=telegram_message_id(chat["id"], message_id))

    async def conclude(
        self, provider_message_id: str, content: ChatContent | None, decision: str, contact: Contact | None
    ) -> None:
        """editMessageText: the same text with the decision, and no keyboard (in the chat still bound: one bound
        since is another person's, or the same person's new chat, and the message is not there)."""
        chat_id = contact.telegram_chat_id if contact is not None else None
        message_id = parse_telegram_message_id(provider_message_id, chat_id)
        if chat_id is None or message_id is None:
            return
        text = telegram_text(content, None, decision) if content is not None else decision
        fields = {"chat_id": chat_id, "message_id": message_id, "text": text, "parse_mode": "HTML"}
        if content is None:
            fields.pop("parse_mode")
        await self._api.call("editMessageText", fields)

    @property
    def api(self) -> TelegramBotApi:
        return self._api

    async def aclose(self) -> None:
        await self._api.aclose()
