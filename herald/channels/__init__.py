"""Delivery channels, chosen by configuration. With no provider configured, a channel writes to the outbox."""

from __future__ import annotations

from functools import partial

from herald.channels.base import Channel, ContactBook, OutboundMessage, SendResult
from herald.channels.outbox import OutboxChannel
from herald.channels.push import PushChannel, PushConnection, PushHub
from herald.channels.render import email_payload, sms_payload, webhook_outbox_payload
from herald.channels.webhook import WebhookChannel
from herald.config import Settings
from herald.models import ChannelName

__all__ = [
    "Channel",
    "OutboundMessage",
    "OutboxChannel",
    "PushChannel",
    "PushConnection",
    "PushHub",
    "SendResult",
    "WebhookChannel",
    "build_channels",
]


def build_channels(settings: Settings, hub: PushHub, book: ContactBook) -> dict[ChannelName, Channel]:
    """One Channel per name: the configured provider, else the outbox."""
    outbox = settings.outbox_dir
    webhook: Channel
    if settings.webhook_secret is not None:
        webhook = WebhookChannel(
            settings.webhook_secret.get_secret_value(),
            book=book,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.allow_private_webhooks,
        )
    else:
        webhook = OutboxChannel(ChannelName.webhook, outbox, webhook_outbox_payload)
    return {
        ChannelName.push: PushChannel(hub),
        ChannelName.email: OutboxChannel(ChannelName.email, outbox, partial(email_payload, sender=settings.email_from)),
        ChannelName.sms: OutboxChannel(ChannelName.sms, outbox, partial(sms_payload, sender=settings.sms_from)),
        ChannelName.webhook: webhook,
    }
