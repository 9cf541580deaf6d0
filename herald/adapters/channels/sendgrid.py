"""Email through SendGrid's v3 /mail/send, with the idempotency key in `personalizations[0].custom_args`.

The `sendgrid` client is blocking (urllib), so every call runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import time
import urllib.error
from typing import Any

from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]

from herald.adapters.channels.base import (
    MAX_RETRY_AFTER_SECONDS,
    OutboundMessage,
    SendResult,
    cap_retry_after,
)
from herald.adapters.channels.render import email_payload, notification_link, preferences_link
from herald.domain.bounds import MAX_PROVIDER_ID_CHARS, bound_text
from herald.domain.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName

# A reset further away than this is waited out by the regular backoff instead: the one cap on every provider's wait.
MAX_RATE_LIMIT_WAIT_SECONDS = MAX_RETRY_AFTER_SECONDS
_FIELD_PATH = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,100}$")


def rate_limit_retry_after(reset: str | None, now: float) -> float | None:
    """Seconds until `X-RateLimit-Reset` (epoch seconds), floored at 0 and capped; None when absent or unreadable."""
    if not reset:
        return None
    try:
        wait = float(reset[:64].strip()) - now
    except ValueError:
        return None
    return cap_retry_after(wait)


def error_fields(body: bytes | str | None) -> list[str]:
    """The `field` paths SendGrid names in an error body (`personalizations.0.to.0.email`): safe to log, unlike
    its messages, which may quote the address."""
    try:
        document = json.loads(body or b"")
    except (TypeError, ValueError):
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    fields = [e.get("field") for e in errors if isinstance(e, dict)]
    return list(dict.fromkeys(f for f in fields if isinstance(f, str) and _FIELD_PATH.fullmatch(f)))[:5]


def classify_status(status: int, rate_limit_reset: str | None, body: bytes | None, now: float) -> DeliveryError:
    """What a non-2xx answer from SendGrid means: 429 and 5xx retry, every other 4xx is permanent."""
    fields = error_fields(body)
    detail = f" (fields: {', '.join(fields)})" if fields else ""
    if status == 429:
        return TransientDeliveryError(
            "SendGrid rate limit reached (429)",
            retry_after=rate_limit_retry_after(rate_limit_reset, now),
            type_name="SendGridRateLimited",
        )
    if status >= 500:
        return TransientDeliveryError(f"SendGrid answered {status}", type_name="SendGridUnavailable")
    if status in (401, 403):
        return PermanentDeliveryError(
            f"SendGrid refused SENDGRID_API_KEY ({status}): check the key and its mail.send permission",
            type_name="SendGridUnauthorized",
        )
    return PermanentDeliveryError(f"SendGrid rejected the message ({status}){detail}", type_name="SendGridRejected")


class SendGridChannel:
    name = ChannelName.email

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        sender: str,
        link_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self._sender = sender
        self._link_base = link_base
        self._timeout = timeout

    async def send(self, message: OutboundMessage) -> SendResult:
        link = notification_link(self._link_base, message.notification.notification_id)
        payload = email_payload(message, self._sender, link, preferences_link(self._link_base))  # ContactMissing
        try:
            status, headers = await asyncio.to_thread(self._post, payload, message.provider_timeout(self._timeout))
        except HTTPError as exc:
            status = int(exc.status_code)
            if 200 <= status < 300:  # never raised for 2xx, but a success is a success
                return SendResult(provider_message_id=_header(exc.headers, "X-Message-Id"))
            reset = _header(exc.headers, "X-RateLimit-Reset")
            raise classify_status(status, reset, exc.body, time.time()) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError and TimeoutError are OSErrors
            raise _network_failure(exc) from exc
        if not 200 <= status < 300:
            raise classify_status(status, _header(headers, "X-RateLimit-Reset"), None, time.time())
        return SendResult(provider_message_id=_header(headers, "X-Message-Id"))

    def _post(self, payload: dict[str, Any], timeout: float) -> tuple[int, Any]:
        """The blocking call, for a worker thread. Non-2xx answers raise python_http_client HTTPError."""
        response = self._client.client.mail.send.post(request_body=payload, timeout=timeout)
        return int(response.status_code), response.headers


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers is not None else None
    return bound_text(str(value), MAX_PROVIDER_ID_CHARS) if value else None


def _network_failure(exc: BaseException) -> TransientDeliveryError:
    """Timeouts and unreachable hosts are worth retrying; the message names the kind, not the address."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return TransientDeliveryError("SendGrid timed out", type_name="SendGridTimeout")
    return TransientDeliveryError(f"SendGrid unreachable ({type(reason).__name__})", type_name="SendGridUnreachable")
