"""Web Push (RFC 8030, VAPID RFC 8292, aes128gcm RFC 8291) to every browser a user subscribed.

pywebpush encrypts the payload and py_vapid signs the token; the POST goes through the SSRF-guarded client of
webhooks (`herald.netguard.outbound_client`, no redirects): an endpoint is a URL the browser named, so outside
dev mode one that resolves to a loopback, private or link-local address is refused for that subscription.

PushChannel calls this when the user has no live WebSocket. Each subscription gets the same encrypted
payload; the push service's answer decides what happens to it: 404/410 mean the browser dropped the
subscription (deleted here), 429 and 5xx are worth retrying, other 4xx (413 too large, 400, 401/403 for
a VAPID key the service won't accept) are permanent. One success delivers the notification.

Endpoints identify a browser, so they are personal data: errors name counts and statuses, never an
endpoint, a key or a body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import VapidException  # type: ignore[import-untyped]
from pywebpush import WebPusher, WebPushException  # type: ignore[import-untyped]

from herald.adapters.channels.base import (
    MAX_RETRY_AFTER_SECONDS,
    ContactBook,
    OutboundMessage,
    SendResult,
    retry_after_seconds,
)
from herald.adapters.channels.render import notification_link
from herald.adapters.netguard import UnsafeURL, outbound_client
from herald.adapters.vapid import b64url_decode, vapid_signer
from herald.domain.bounds import MAX_PROVIDER_ID_CHARS, bound_text
from herald.domain.errors import PermanentDeliveryError, RecipientNotConnected, TransientDeliveryError
from herald.models import ChannelName, Priority, PushSubscription

# A push service accepts at most 4096 bytes of encrypted body (RFC 8030 section 7.2). aes128gcm adds an
# 86-byte header (16 salt, 4 record size, 1 key id length, 65 key id) and 17 bytes per record
# (1 delimiter, 16 tag): 3993 bytes of plaintext fit in the one record.
WEBPUSH_MAX_BODY_BYTES = 4096
MAX_PAYLOAD_BYTES = WEBPUSH_MAX_BODY_BYTES - 86 - 17
ELLIPSIS = "…"

# A VAPID token's lifetime (RFC 8292 allows at most 24 h); a fresh one signs every push.
VAPID_LIFETIME = 12 * 3600

URGENCY = {Priority.low: "low", Priority.medium: "normal", Priority.high: "high", Priority.critical: "high"}


class Outcome(StrEnum):
    delivered = "delivered"
    gone = "gone"  # 404/410: the browser unsubscribed or the subscription expired
    transient = "transient"
    permanent = "permanent"


@dataclass(frozen=True)
class PushAttempt:
    """What one subscription's push service answered; `reason` is safe to log (no endpoint, no body)."""

    outcome: Outcome
    reason: str
    status: int | None = None
    location: str | None = None
    retry_after: float | None = None


def classify_status(status: int) -> Outcome:
    """The push service's HTTP status as an outcome for this subscription."""
    if 200 <= status < 300:
        return Outcome.delivered
    if status in (404, 410):
        return Outcome.gone
    if status in (408, 429) or status >= 500:
        return Outcome.transient
    return Outcome.permanent


def summarize(attempts: list[PushAttempt]) -> SendResult:
    """One result for all of a user's subscriptions: delivered if any took it, else the most hopeful failure.

    Any transient failure retries (the gone ones are already deleted); all gone means the user has no live
    browser, which is not a failure of Web Push but of reach: RecipientNotConnected sends the workflow to email.
    """
    delivered = [a for a in attempts if a.outcome is Outcome.delivered]
    if delivered:
        first = next((a.location for a in delivered if a.location), None)
        return SendResult(provider_message_id=first or f"webpush:{len(delivered)}/{len(attempts)}")
    if not attempts:
        raise RecipientNotConnected("the user has no Web Push subscription")
    counts = ", ".join(f"{n} {reason}" for reason, n in Counter(a.reason for a in attempts).items())
    transient = [a for a in attempts if a.outcome is Outcome.transient]
    if transient:
        waits = [a.retry_after for a in transient if a.retry_after is not None]
        rate_limited = any(a.status == 429 for a in transient)
        raise TransientDeliveryError(
            f"no push service took the message ({counts})",
            retry_after=min(max(waits), MAX_RETRY_AFTER_SECONDS) if waits else None,
            type_name="WebPushRateLimited" if rate_limited else "WebPushUnavailable",
        )
    if all(a.outcome is Outcome.gone for a in attempts):
        raise RecipientNotConnected(f"no live browser subscriptions ({counts}; removed)")
    raise PermanentDeliveryError(f"every push service refused the message ({counts})", type_name="WebPushRejected")


def _fit(build: Callable[[str], bytes], text: str, limit: int) -> str:
    """The longest prefix of `text` (plus an ellipsis when cut) whose built payload fits in `limit` bytes."""
    if len(build(text)) <= limit:
        return text
    lo, hi = 0, len(text)  # invariant: a cut at `lo` fits (checked below for lo=0), a cut at `hi` does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if len(build(text[:mid].rstrip() + ELLIPSIS)) <= limit:
            lo = mid
        else:
            hi = mid
    cut = text[:lo].rstrip()
    return cut + ELLIPSIS if cut else ""


def webpush_payload(message: OutboundMessage, link_base: str | None = None, limit: int = MAX_PAYLOAD_BYTES) -> str:
    """The JSON a service worker receives in its `push` event, cut (body first, then title) to fit `limit` bytes."""
    n = message.notification
    fields: dict[str, Any] = {
        # `resolved`: it replaces the notification shown under the same id (OutboundMessage.replaces).
        "type": "resolved" if message.replaces else "notification",
        "notification_id": n.notification_id,
        "agent_id": n.agent_id,
        "priority": n.priority.value,
        "title": n.title,
        "body": n.body,
    }
    url = notification_link(link_base, n.notification_id)
    if url:
        fields["url"] = url
    if n.actions:
        # Notification API actions (buttons); the service worker POSTs {"action_id"} to respond_url. An action
        # answered in words is a `type: text` action (a reply box where the browser has one): {"action_id", "text"}.
        fields["actions"] = [
            {"action": a.id, "title": a.label, **({"type": "text"} if a.takes_text else {})} for a in n.actions
        ]
        if message.respond_url:
            fields["respond_url"] = message.respond_url

    def encode(**changes: str) -> bytes:
        return json.dumps({**fields, **changes}, ensure_ascii=False, separators=(",", ":")).encode()

    body = _fit(lambda b: encode(body=b), n.body, limit)
    if len(encode(body=body)) > limit:
        body = ""
        fields["title"] = _fit(lambda t: encode(body="", title=t), n.title, limit)
    payload = encode(body=body)
    if len(payload) > limit:
        raise ValueError(f"the push payload's fixed fields take {len(payload)} bytes; the limit is {limit}")
    return payload.decode()


def topic(idempotency_key: str) -> str:
    """The Web Push `Topic` (at most 32 base64url characters): a retried send replaces one not yet delivered."""
    return base64.urlsafe_b64encode(hashlib.sha256(idempotency_key.encode()).digest()[:24]).decode()


def subscription_keys_problem(subscription: PushSubscription) -> tuple[str, str] | None:
    """(field, problem) when the keys cannot encrypt a push; checked when a browser subscribes."""
    try:
        p256dh = b64url_decode(subscription.keys.p256dh)
    except ValueError:
        return "keys.p256dh", "is not base64url"
    if len(p256dh) != 65 or p256dh[0] != 4:
        return "keys.p256dh", "must be an uncompressed P-256 public key (65 bytes, base64url)"
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        return "keys.p256dh", "is not a point on the P-256 curve"
    try:
        auth = b64url_decode(subscription.keys.auth)
    except ValueError:
        return "keys.auth", "is not base64url"
    if len(auth) != 16:
        return "keys.auth", "must be 16 bytes (base64url)"
    return None


class WebPushSender:
    """The Web Push half of the push channel: every subscription of the user, one payload each."""

    name = ChannelName.push

    def __init__(
        self,
        vapid_private_key: str,
        *,
        book: ContactBook,
        subject: str,
        ttl: int = 86400,
        timeout: float = 10.0,
        link_base: str | None = None,
        allow_private: bool = False,
    ) -> None:
        if ttl <= 0:
            # pywebpush's default TTL of 0 tells the service to drop the message unless the browser is online.
            raise ValueError("the Web Push TTL must be positive")
        self._vapid = vapid_signer(vapid_private_key)
        try:
            self._vapid.sign({"sub": subject, "aud": "https://example.com"})
        except VapidException:
            raise ValueError("VAPID_SUBJECT must be a mailto: address or an https:// origin (no path)") from None
        self._book = book
        self._subject = subject
        self._ttl = ttl
        self._timeout = timeout
        self._link_base = link_base
        # Endpoints are URLs a browser (so a caller) names: the SSRF-guarded client of webhooks, no redirects.
        self._allow_private = allow_private
        self._client: httpx.AsyncClient | None = None

    async def send(self, message: OutboundMessage) -> SendResult:
        user_id = message.notification.recipient
        subscriptions = await self._book.push_subscriptions(user_id)
        if not subscriptions:
            raise RecipientNotConnected("the user has no live push connection and no Web Push subscription")
        payload = webpush_payload(message, self._link_base)
        # A replacement (a resolve) reuses the Topic of the message it replaces: a push service still holding that one
        # for an offline browser delivers only the replacement.
        headers = {
            "Topic": topic(message.replaces or message.idempotency_key),
            "Urgency": URGENCY[message.notification.priority],
        }
        if self._client is None or self._client.is_closed:
            self._client = outbound_client(timeout=self._timeout, allow_private=self._allow_private)
        timeout = message.provider_timeout(self._timeout)
        attempts = await asyncio.gather(
            *(self._send_one(self._client, s, payload, headers, timeout) for s in subscriptions)
        )
        for subscription, attempt in zip(subscriptions, attempts, strict=True):
            if attempt.outcome is Outcome.gone:
                await self._book.remove_push_subscription(user_id, subscription.endpoint)
        return summarize(list(attempts))

    def _request(
        self, subscription: PushSubscription, payload: str, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """The encrypted body (RFC 8291, aes128gcm) and the headers, VAPID-signed for the endpoint's origin."""
        info = subscription.model_dump(mode="json", exclude_none=True)
        body = WebPusher(info).encode(payload.encode(), "aes128gcm")["body"]
        origin = urlsplit(subscription.endpoint)
        claims = {
            "sub": self._subject,
            "aud": f"{origin.scheme}://{origin.netloc}",
            "exp": int(time.time()) + VAPID_LIFETIME,
        }
        signed = {str(k): str(v) for k, v in self._vapid.sign(claims).items()}
        return body, {**headers, **signed, "Content-Encoding": "aes128gcm", "TTL": str(self._ttl)}

    async def _send_one(
        self,
        client: httpx.AsyncClient,
        subscription: PushSubscription,
        payload: str,
        headers: dict[str, str],
        timeout: float,
    ) -> PushAttempt:
        try:
            body, request_headers = self._request(subscription, payload, headers)
        except (WebPushException, ValueError, TypeError, http_ece.ECEException):
            # Keys that decode but cannot encrypt (checked at subscribe time, so only for older rows).
            return PushAttempt(Outcome.permanent, "unusable subscription keys")
        try:
            response = await client.post(subscription.endpoint, content=body, headers=request_headers, timeout=timeout)
        except UnsafeURL:
            # Permanent for this subscription; the reason names the rule, never the endpoint.
            return PushAttempt(Outcome.permanent, "endpoint refused (non-public address)")
        except httpx.TimeoutException:
            return PushAttempt(Outcome.transient, "timed out")
        except (httpx.HTTPError, OSError) as exc:
            return PushAttempt(Outcome.transient, f"unreachable ({type(exc).__name__})")
        status = response.status_code
        outcome = classify_status(status)
        if outcome is Outcome.delivered:
            return PushAttempt(outcome, f"answered {status}", status=status, location=_location(response))
        retry_after = retry_after_seconds(response.headers.get("retry-after")) if outcome is Outcome.transient else None
        return PushAttempt(outcome, f"answered {status}", status=status, retry_after=retry_after)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _location(response: httpx.Response) -> str | None:
    location = response.headers.get("location")
    return bound_text(str(location), MAX_PROVIDER_ID_CHARS) if location else None
