"""The Channel interface every provider implements: send one message, or raise a classified DeliveryError."""

from __future__ import annotations

import math
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
    # Seconds this send may take: `provider_timeout` of its activity's start_to_close (None outside an activity).
    # Each channel gives up on its provider by then, so Temporal never cuts off a send the provider may have taken.
    timeout: float | None = None

    def provider_timeout(self, configured: float) -> float:
        """The channel's own timeout, shortened to what this send's activity leaves it."""
        return configured if self.timeout is None else min(configured, self.timeout)

    # An email's signed one-click unsubscribe link (herald.unsubscribe); None without HERALD_ANSWER_SECRET.
    unsubscribe_url: str | None = None
    # The idempotency key of the message this one replaces (a resolved notification's Web Push): sent under that
    # message's Web Push `Topic`, as a `resolved` payload, so the push service and the browser replace it.
    replaces: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None


class Channel(Protocol):
    name: ChannelName

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver `message`; raise TransientDeliveryError to retry, PermanentDeliveryError to stop."""
        ...


class ContactBook(Protocol):
    """What channels may change about a recipient when a provider says an address is dead (the store's users repository)."""

    async def reject_contact(self, user_id: str, field: str, reason: str) -> None:
        """Mark `phone_rejected` or `webhook_disabled` with the provider's reason."""
        ...

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]: ...

    async def remove_push_subscription(self, user_id: str, endpoint: str) -> bool: ...


# The longest wait a provider's Retry-After (or SendGrid's X-RateLimit-Reset) may impose before the next try:
# the default retry schedule's own maximum interval. A receiver asking for days would otherwise park the channel.
MAX_RETRY_AFTER_SECONDS = 600.0


def cap_retry_after(seconds: float | None) -> float | None:
    """A provider's requested wait, floored at 0 and capped at MAX_RETRY_AFTER_SECONDS; None when unusable (NaN)."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


def retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After as seconds or an HTTP date, capped; None when absent or unreadable."""
    if not value:
        return None
    value = value[:64]  # a header is the provider's text: never parse more than a date's worth of it
    try:
        return cap_retry_after(float(value))
    except ValueError:
        pass
    try:
        return cap_retry_after(parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


# Every provider call (SendGrid, SMTP, Twilio, Web Push, webhooks, agent callbacks, the push ack wait) must give up
# before Temporal gives up on the activity that makes it: a call cut off by Temporal leaves no attempt in the
# delivery log and is sent again by the retry, though the provider may well have taken it. The margin leaves the
# attempt time to be logged after the provider's answer or timeout.
PROVIDER_TIMEOUT_MARGIN_FRACTION = 0.2
PROVIDER_TIMEOUT_MIN_MARGIN_SECONDS = 1.0


def provider_timeout(activity_timeout: float, configured: float | None = None) -> float:
    """The timeout of a provider call made inside an activity whose start_to_close is `activity_timeout` seconds.

    `configured` (a channel's own setting, e.g. HERALD_WEBHOOK_TIMEOUT_SECONDS) is honoured when it is shorter.
    The margin is a fifth of the activity's timeout, at least a second, but never more than half of it.
    """
    margin = min(
        max(activity_timeout * PROVIDER_TIMEOUT_MARGIN_FRACTION, PROVIDER_TIMEOUT_MIN_MARGIN_SECONDS),
        activity_timeout / 2,
    )
    budget = activity_timeout - margin
    return min(budget, configured) if configured is not None else budget
