"""The Channel interface every provider implements: send one message, or raise a classified DeliveryError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from herald.models import AgentNotification, ChannelName, Contact


@dataclass(frozen=True)
class OutboundMessage:
    """One notification on one channel, with the stable key a provider can deduplicate on."""

    notification: AgentNotification
    channel: ChannelName
    idempotency_key: str
    contact: Contact


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None = None


class Channel(Protocol):
    name: ChannelName

    async def send(self, message: OutboundMessage) -> SendResult:
        """Deliver `message`; raise TransientDeliveryError to retry, PermanentDeliveryError to stop."""
        ...
