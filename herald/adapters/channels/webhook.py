"""Signed webhooks (Standard Webhooks): POST to the user's URL with webhook-id/-timestamp/-signature.

2xx delivers; 410 Gone disables the endpoint in the contact record; 429 and 5xx retry (honouring
Retry-After); any other answer is permanent. Outside dev mode, URLs that resolve inward are refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx

from herald.adapters.channels.base import (
    ContactBook,
    OutboundMessage,
    SendResult,
    retry_after_seconds,
)
from herald.adapters.channels.render import webhook_body
from herald.adapters.netguard import UnsafeURL, outbound_client
from herald.domain.bounds import MAX_PROVIDER_ID_CHARS, bound_text
from herald.domain.errors import ContactMissing, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName

WEBHOOK_GONE = 410


def signing_key(secret: str) -> bytes:
    """Standard Webhooks secrets are `whsec_<base64>`; any other string is used as raw bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def classify(status: int, retry_after: str | None) -> DeliveryError | None:
    """The verdict on a receiver's answer: None for 2xx, else the error to raise."""
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        return TransientDeliveryError(
            f"webhook endpoint answered {status}",
            retry_after=retry_after_seconds(retry_after),
            type_name="WebhookRateLimited" if status == 429 else "WebhookUnavailable",
        )
    if status == WEBHOOK_GONE:
        return PermanentDeliveryError("webhook endpoint answered 410 Gone; it is now disabled", type_name="WebhookGone")
    return PermanentDeliveryError(f"webhook endpoint answered {status}", type_name="WebhookRejected")


class WebhookChannel:
    name = ChannelName.webhook

    def __init__(
        self,
        secret: str,
        *,
        book: ContactBook,
        timeout: float = 10.0,
        allow_private: bool = False,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._secret = secret
        self._book = book
        # Outside dev mode every connection is checked against the address it goes to (herald/adapters/netguard.py).
        self._timeout = timeout
        self._client = client or outbound_client(timeout=timeout, allow_private=allow_private)

    async def send(self, message: OutboundMessage) -> SendResult:
        url = message.contact.webhook_url
        if not url:
            raise ContactMissing("the user has no webhook URL on file")
        if message.contact.webhook_disabled:
            raise ContactMissing(
                f"the webhook endpoint is disabled ({message.contact.webhook_disabled}); save the contact again to re-enable it"
            )
        body = json.dumps(webhook_body(message), separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, message.idempotency_key, timestamp, body),
        }
        try:
            response = await self._client.post(
                url, content=body, headers=headers, timeout=message.provider_timeout(self._timeout)
            )
        except UnsafeURL as exc:
            raise PermanentDeliveryError(f"webhook URL {exc}", type_name="WebhookUrlRefused") from None
        except httpx.TimeoutException as exc:
            raise TransientDeliveryError("webhook endpoint timed out", type_name="WebhookTimeout") from exc
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(
                f"webhook endpoint unreachable ({type(exc).__name__})", type_name="WebhookUnreachable"
            ) from exc
        error = classify(response.status_code, response.headers.get("retry-after"))
        if error is None:
            # The receiver's own id, whatever its length: cut and hashed to fit the delivery log.
            return SendResult(
                provider_message_id=bound_text(response.headers.get("x-message-id"), MAX_PROVIDER_ID_CHARS)
            )
        if response.status_code == WEBHOOK_GONE:
            await self._book.reject_contact(message.notification.recipient, "webhook_disabled", "410 Gone")
        raise error

    async def aclose(self) -> None:
        await self._client.aclose()
