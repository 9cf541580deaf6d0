"""SMS through Twilio's Messages API, with the async client so a send never blocks the worker's event loop.

Twilio's verdicts are sorted once here: a refused number (21211 invalid, 21614 not mobile, 21610 opted out)
is permanent and marks the contact so Herald stops texting it; other 4xx are permanent; 429 and 5xx retry,
honouring Retry-After. Twilio's own error text quotes the number, so it never reaches a message or a log.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException  # type: ignore[import-untyped]
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from herald.adapters.channels.base import (
    ContactBook,
    OutboundMessage,
    SendResult,
    retry_after_seconds,
)
from herald.adapters.channels.render import notification_link, sms_payload
from herald.domain.bounds import MAX_PROVIDER_ID_CHARS, bound_text
from herald.domain.errors import ContactMissing, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from herald.models import ChannelName

# Twilio error codes that say the number itself is unusable: save a new one, don't retry, don't text it again.
PHONE_REFUSED_CODES = frozenset({21211, 21610, 21614})
RATE_LIMIT_CODE = 20429
RETRYABLE_STATUS = frozenset({408, 425, 429})

# The headers of the reply Twilio just gave this task's send: the library raises without them, and
# Retry-After lives there. One box per send, so concurrent sends never see each other's replies.
_reply_headers: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "herald_twilio_reply_headers", default=None
)


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """The library's aiohttp client, with its own timeout applied and the reply's headers kept."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        headers = dict(headers or {})
        if auth is not None:
            # As a header: aiohttp deprecates its `auth=BasicAuth(...)`, which the library would use.
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        # AsyncTwilioHttpClient ignores the timeout given to its constructor (aiohttp would wait forever).
        response = await super().request(method, url, headers=headers, timeout=timeout or self.timeout, **kwargs)
        box = _reply_headers.get()
        if box is not None and response.headers is not None:
            box.update({str(k).lower(): str(v) for k, v in response.headers.items()})
        return response


def refused_number_reason(code: int | None) -> str | None:
    """The `phone_rejected` mark for a Twilio error that condemns the number itself, else None."""
    return f"twilio error {code}" if code in PHONE_REFUSED_CODES else None


def classify_twilio_error(status: int, code: int | None, retry_after: float | None = None) -> DeliveryError:
    """Twilio's HTTP status and error code as Herald's verdict; the message names codes, never the number."""
    what = f"twilio answered {status}" + (f" with error {code}" if code is not None else "")
    if status == 429 or code == RATE_LIMIT_CODE:
        return TransientDeliveryError(what, retry_after=retry_after, type_name="TwilioRateLimited")
    if status >= 500 or status in RETRYABLE_STATUS:
        return TransientDeliveryError(what, retry_after=retry_after, type_name="TwilioUnavailable")
    if code in PHONE_REFUSED_CODES:
        return PermanentDeliveryError(
            f"{what}: the phone number was refused; the user must save a new one", type_name="PhoneRejected"
        )
    if status in (401, 403):
        return PermanentDeliveryError(f"{what}: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN", type_name="TwilioAuth")
    return PermanentDeliveryError(what, type_name="TwilioRejected")


class TwilioSmsChannel:
    name = ChannelName.sms

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        book: ContactBook,
        api_base: str = "https://api.twilio.com",
        sender: str | None = None,
        messaging_service_sid: str | None = None,
        status_callback_url: str | None = None,
        link_base: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not sender and not messaging_service_sid:
            raise ValueError("Twilio SMS needs a sender: set TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
        self._account_sid, self._auth_token = account_sid, auth_token
        self._book = book
        self._api_base = api_base
        self._sender = sender
        self._messaging_service_sid = messaging_service_sid
        self._status_callback_url = status_callback_url
        self._link_base = link_base
        self._timeout = timeout
        # Built on first send: aiohttp's session belongs to the event loop that creates it.
        self._client: Any = None
        self._http: _HttpClient | None = None

    def _twilio(self) -> Any:
        if self._client is None:
            self._http = _HttpClient(timeout=self._timeout)
            # environment={}: nothing from os.environ (TWILIO_EDGE/REGION would rewrite the API host).
            client = Client(self._account_sid, self._auth_token, http_client=self._http, environment={})
            client.api.base_url = self._api_base
            self._client = client
        return self._client

    async def send(self, message: OutboundMessage) -> SendResult:
        contact = message.contact
        if contact.phone and contact.phone_rejected:
            raise ContactMissing(
                f"the phone number on file was refused by the SMS provider ({contact.phone_rejected}); "
                "the user must save a new number to receive SMS"
            )
        link = notification_link(self._link_base, message.notification.notification_id)
        payload = sms_payload(message, self._sender, link=link)  # raises ContactMissing without a phone
        fields: dict[str, Any] = {"to": payload["To"], "body": payload["Body"]}
        # A messaging service picks the sender from its own pool, so it wins over a fixed From number.
        if self._messaging_service_sid:
            fields["messaging_service_sid"] = self._messaging_service_sid
        else:
            fields["from_"] = self._sender
        if self._status_callback_url:
            fields["status_callback"] = self._status_callback_url
        headers: dict[str, str] = {}
        token = _reply_headers.set(headers)
        try:
            # The whole exchange within this send's budget (the client's own timeout bounds each request).
            async with asyncio.timeout(message.provider_timeout(self._timeout)):
                created = await self._twilio().messages.create_async(**fields)
        except (TwilioRestException, TwilioServiceException) as exc:
            status, code = int(exc.status), _int_or_none(exc.code)
            reason = refused_number_reason(code)
            if reason is not None:
                await self._book.reject_contact(message.notification.recipient, "phone_rejected", reason)
            # `from None`: the library's exception text quotes the phone number.
            raise classify_twilio_error(status, code, retry_after_seconds(headers.get("retry-after"))) from None
        except TimeoutError:
            raise TransientDeliveryError("twilio timed out", type_name="TwilioTimeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientDeliveryError(
                f"twilio unreachable ({type(exc).__name__})", type_name="TwilioUnreachable"
            ) from None
        finally:
            _reply_headers.reset(token)
        return SendResult(
            provider_message_id=bound_text(str(created.sid), MAX_PROVIDER_ID_CHARS) if created.sid else None
        )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._client = self._http = None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
