"""The agent's callback: when a question ends (answered, expired, or any other final status), POST the result to its
`callback_url`.

For agents that don't hold a connection open while a person takes hours to answer. The request is signed the
way Herald signs webhooks (Standard Webhooks, HERALD_WEBHOOK_SECRET), with `webhook-id` `<workflow_id>/callback`
so a receiver drops a repeat. Without the secret the body goes to the outbox (`outbox/callback/<id>.json`),
like every unconfigured channel.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from herald.adapters.channels.base import provider_timeout
from herald.adapters.channels.outbox import _write_atomically
from herald.adapters.channels.webhook import classify, sign
from herald.adapters.netguard import UnsafeURL, outbound_client
from herald.config import Settings
from herald.domain.errors import PermanentDeliveryError, TransientDeliveryError
from herald.models import AgentCallback


def callback_body(callback: AgentCallback, now: datetime) -> dict[str, Any]:
    """`notification.<status>` (`answered`, `expired`, `no_channel`, `failed`, ...), with the answer: ids, the
    action, the channel, times; a duplicate question names the question it joined in `duplicate_of`."""
    return {
        "type": f"notification.{callback.status}",
        "timestamp": now.astimezone(UTC).isoformat(),
        "data": {
            "notification_id": callback.notification_id,
            "agent_id": callback.agent_id,
            "status": callback.status,
            "answer": callback.answer.model_dump(mode="json") if callback.answer else None,
            "respond_by": callback.respond_by.isoformat() if callback.respond_by else None,
            "duplicate_of": callback.duplicate_of,
        },
    }


class AgentCallbacks:
    """Sends agent callbacks; raises TransientDeliveryError to retry and PermanentDeliveryError to give up."""

    def __init__(
        self,
        secret: str | None,
        outbox_dir: Path,
        *,
        allow_private: bool = False,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._secret = secret
        self._outbox = outbox_dir / "callback"
        self._allow_private = allow_private
        self._timeout = timeout
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> AgentCallbacks:
        secret = (
            settings.webhook.webhook_secret.get_secret_value() if settings.webhook.webhook_secret is not None else None
        )
        return cls(
            secret,
            settings.outbox_dir,
            allow_private=settings.webhook.allow_private_webhooks,
            # Inside the call_agent activity's timeout (HERALD_SEND_TIMEOUT_SECONDS), as every provider call is.
            timeout=provider_timeout(settings.delivery.send_timeout_seconds, settings.webhook.webhook_timeout_seconds),
        )

    async def send(self, callback: AgentCallback, now: datetime, activity_timeout: float | None = None) -> str:
        """Deliver the callback once; the receiver's answer decides retry or not, as for webhooks.

        The POST gives up before the activity making it would (`provider_timeout` of `activity_timeout`).
        """
        body = callback_body(callback, now)
        msg_id = f"{callback.workflow_id}/callback"
        if self._secret is None:
            path = self._outbox / f"{callback.notification_id}.json"
            _write_atomically(path, {"url": callback.url, "webhook-id": msg_id, "body": body})
            return f"outbox:callback/{path.name}"
        status = await self.post_signed(callback.url, msg_id, body, activity_timeout, kind="Callback")
        return f"callback:{status}"

    @property
    def signs(self) -> bool:
        """Whether HERALD_WEBHOOK_SECRET is set (else what would be posted goes to the outbox)."""
        return self._secret is not None

    async def post_signed(
        self, url: str, msg_id: str, body: Any, activity_timeout: float | None = None, *, kind: str
    ) -> int:
        """POST `body` as JSON to `url`, signed (Standard Webhooks) with `msg_id` as `webhook-id`, through the SSRF
        guard; the receiver's status when it took it. Raises TransientDeliveryError to retry and
        PermanentDeliveryError to give up, their type names starting with `kind` (Callback, Subscription)."""
        if self._secret is None:
            raise PermanentDeliveryError("HERALD_WEBHOOK_SECRET is not set", type_name=f"{kind}Unsigned")
        content = json.dumps(body, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, msg_id, timestamp, content),
        }
        timeout = self._timeout if activity_timeout is None else provider_timeout(activity_timeout, self._timeout)
        client = self._client or outbound_client(timeout=timeout, allow_private=self._allow_private)
        what = kind.lower()
        try:
            response = await client.post(url, content=content, headers=headers, timeout=timeout)
        except UnsafeURL as exc:
            raise PermanentDeliveryError(f"{what} URL {exc}", type_name=f"{kind}UrlRefused") from None
        except httpx.InvalidURL:
            raise PermanentDeliveryError(f"{what} URL is not valid", type_name=f"{kind}UrlRefused") from None
        except httpx.TimeoutException:
            raise TransientDeliveryError(f"{what} endpoint timed out", type_name=f"{kind}Timeout") from None
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(
                f"{what} endpoint unreachable ({type(exc).__name__})", type_name=f"{kind}Unreachable"
            ) from None
        finally:
            if self._client is None:
                await client.aclose()
        error = classify(response.status_code, response.headers.get("retry-after"))
        if error is not None:
            raise error
        return response.status_code
