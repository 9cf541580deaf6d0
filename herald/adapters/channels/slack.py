"""Slack: a direct message to the person's member id (chat.postMessage) with one button per action, edited
(chat.update) once the question has ended; through the official slack-sdk's AsyncWebClient.

Slack's verdicts are sorted once here: `ratelimited` (HTTP 429) waits for Retry-After; an address or a token
Slack refuses (PERMANENT_ERRORS) is permanent, so the notification falls back; 5xx, Slack's own internal errors,
timeouts and connection failures retry. Messages name Slack's error code, never the member id or the text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from herald.adapters.channels.base import OutboundMessage, SendResult, retry_after_seconds
from herald.adapters.channels.messaging import ChatContent, slack_blocks, slack_payload
from herald.adapters.channels.render import notification_link
from herald.domain.bounds import MAX_PROVIDER_ID_CHARS, bound_text
from herald.domain.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName, Contact

# An address or a token Slack will never take: try the next channel, not Slack again.
PERMANENT_ERRORS = frozenset(
    {"invalid_auth", "account_inactive", "user_not_found", "channel_not_found", "not_in_channel", "is_archived"}
)
# Slack's own trouble, which passes (Slack's docs: retry these).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
ERROR_CODE_MAX = 64


def classify_slack_error(status: int, error: str | None, retry_after: float | None = None) -> DeliveryError:
    """Slack's HTTP status and `error` code as Herald's verdict."""
    code = (error or "")[:ERROR_CODE_MAX] or None
    what = f"slack answered {status}" + (f" with {code}" if code else "")
    if status == 429 or code == "ratelimited":
        return TransientDeliveryError(what, retry_after=retry_after, type_name="SlackRateLimited")
    if status >= 500 or code in TRANSIENT_ERRORS:
        return TransientDeliveryError(what, retry_after=retry_after, type_name="SlackUnavailable")
    if code in ("invalid_auth", "account_inactive"):
        return PermanentDeliveryError(f"{what}: check SLACK_BOT_TOKEN", type_name="SlackAuth")
    if code in PERMANENT_ERRORS:
        return PermanentDeliveryError(
            f"{what}: Slack cannot reach the member id on file", type_name="SlackRecipientRefused"
        )
    return PermanentDeliveryError(what, type_name="SlackRejected")


def slack_message_id(channel: str, ts: str) -> str:
    """The attempt's provider_message_id: where the message is (its conversation and timestamp), bounded."""
    return bound_text(f"{channel}:{ts}", MAX_PROVIDER_ID_CHARS) or ""


def parse_slack_message_id(value: str) -> tuple[str, str] | None:
    channel, sep, ts = value.partition(":")
    if not sep or not channel or not ts or "~" in value:
        return None
    return channel, ts


class SlackChannel:
    name = ChannelName.slack

    def __init__(
        self,
        token: str,
        *,
        api_url: str = "https://slack.com/api/",
        link_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._token = token
        self._api_url = api_url if api_url.endswith("/") else api_url + "/"
        self._link_base = link_base
        self._timeout = timeout
        self._client: AsyncWebClient | None = None

    def _slack(self) -> AsyncWebClient:
        if self._client is None:
            # No retry handlers: Herald's own schedule retries, within its budget (the SDK's would retry inside it).
            self._client = AsyncWebClient(
                token=self._token, base_url=self._api_url, timeout=max(1, int(self._timeout)), retry_handlers=[]
            )
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        link = notification_link(self._link_base, message.notification.notification_id)
        payload = slack_payload(message, link)  # raises ContactMissing without a member id
        reply = await self._call("chat_postMessage", message.provider_timeout(self._timeout), **payload)
        channel, ts = reply.get("channel"), reply.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            raise TransientDeliveryError("slack answered ok without the message's channel and ts", type_name="SlackOdd")
        return SendResult(provider_message_id=slack_message_id(channel, ts))

    async def conclude(
        self, provider_message_id: str, content: ChatContent | None, decision: str, contact: Contact | None
    ) -> None:
        """chat.update: the same message, its buttons replaced by the decision."""
        where = parse_slack_message_id(provider_message_id)
        if where is None:
            return
        channel, ts = where
        if content is None:
            blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": decision}}]
        else:
            blocks = slack_blocks(content, None, notification_id="", decision=decision)
        await self._call("chat_update", self._timeout, channel=channel, ts=ts, text=decision, blocks=blocks)

    async def _call(self, method: str, timeout: float, **fields: Any) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                response = await getattr(self._slack(), method)(**fields)
        except SlackApiError as exc:
            reply = exc.response
            data = reply.data if isinstance(reply.data, dict) else {}
            error = data.get("error") if isinstance(data.get("error"), str) else None
            headers = {str(k).lower(): str(v) for k, v in (reply.headers or {}).items()}
            raise classify_slack_error(
                int(reply.status_code), error, retry_after_seconds(headers.get("retry-after"))
            ) from None
        except TimeoutError:
            raise TransientDeliveryError("slack timed out", type_name="SlackTimeout") from None
        except (aiohttp.ClientError, SlackClientError, OSError, ValueError) as exc:
            raise TransientDeliveryError(
                f"slack unreachable ({type(exc).__name__})", type_name="SlackUnreachable"
            ) from None
        data = response.data
        return data if isinstance(data, dict) else {}

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.session is not None and not client.session.closed:
            await client.session.close()
