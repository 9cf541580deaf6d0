"""The Channel interface every provider implements: send one message, or raise a classified DeliveryError."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol

from herald.models import AgentNotification, ChannelName, Contact, PushSubscription


@dataclass(frozen=True)
class OutboundMessage:
    """One notification on one channel, with the stable key a provider can deduplicate on."""

    notification: AgentNotification
    channel: ChannelName
    idempotency_key: str
    contact: Contact
    # A question's signed answer links (herald.answers.AnswerLinks): one per action for email, and one
    # where the holder POSTs its choice for webhooks and Web Push. Empty without HERALD_ANSWER_SECRET.
    action_urls: Mapping[str, str] = field(default_factory=dict)
    respond_url: str | None = None
    # An email's signed one-click unsubscribe link (herald.unsubscribe); None without HERALD_ANSWER_SECRET.
    unsubscribe_url: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None


class Channel(Protocol):
    name: ChannelName

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver `message`; raise TransientDeliveryError to retry, PermanentDeliveryError to stop."""
        ...


class ContactBook(Protocol):
    """What channels may change about a recipient when a provider says an address is dead (the Store)."""

    async def reject_contact(self, user_id: str, field: str, reason: str) -> None:
        """Mark `phone_rejected` or `webhook_disabled` with the provider's reason."""
        ...

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]: ...

    async def remove_push_subscription(self, user_id: str, endpoint: str) -> bool: ...


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
