"""The channels a worker delivers with, chosen by configuration. With no provider configured, a channel writes to
the outbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from herald.adapters.channels.base import Channel, ContactBook, OutboundMessage, provider_timeout
from herald.adapters.channels.chat import ChatChannel
from herald.adapters.channels.messaging import slack_payload, telegram_payload
from herald.adapters.channels.outbox import OutboxChannel
from herald.adapters.channels.push import PushChannel, PushHub, PushPublisher
from herald.adapters.channels.redis_push import RedisPushPublisher
from herald.adapters.channels.render import (
    email_payload,
    notification_link,
    preferences_link,
    sms_payload,
    webhook_outbox_payload,
)
from herald.adapters.channels.sendgrid import SendGridChannel
from herald.adapters.channels.slack import SlackChannel
from herald.adapters.channels.smtp import SmtpChannel
from herald.adapters.channels.telegram import TelegramChannel
from herald.adapters.channels.twilio import TwilioSmsChannel
from herald.adapters.channels.webhook import WebhookChannel
from herald.adapters.channels.webpush import WebPushSender
from herald.config import Settings
from herald.models import ChannelName

__all__ = ["build_channels", "providers"]


def build_channels(settings: Settings, hub: PushHub, book: ContactBook) -> dict[ChannelName, Channel]:
    """One Channel per name: the configured provider, else the outbox (see `providers`)."""
    return {
        ChannelName.push: _push(settings, hub, book),
        ChannelName.email: _email(settings),
        ChannelName.sms: _sms(settings, book),
        ChannelName.webhook: _webhook(settings, book),
        ChannelName.chat: _chat(settings),
        ChannelName.slack: _slack(settings),
        ChannelName.telegram: _telegram(settings),
    }


def providers(settings: Settings) -> dict[ChannelName, str]:
    """What each channel delivers through under these settings, for banners and logs (no secrets)."""
    push = "websocket via redis" if settings.redis.redis_url else "websocket (in-process)"
    if settings.webpush.vapid_private_key is not None:
        push += ", then web push"
    email = "sendgrid" if settings.sendgrid.api_key else "smtp" if settings.smtp.url else "outbox"
    sms = "twilio" if settings.twilio.account_sid and settings.twilio.auth_token else "outbox"
    webhook = "signed POST" if settings.webhook.webhook_secret else "outbox"
    chat = "apprise (" + ", ".join(settings.chat.chat_schemes) + ")"
    slack = "slack" if settings.slack.bot_token else "outbox"
    telegram = "telegram" if settings.telegram.bot_token else "outbox"
    return {
        ChannelName.push: push,
        ChannelName.email: email,
        ChannelName.sms: sms,
        ChannelName.webhook: webhook,
        ChannelName.chat: chat,
        ChannelName.slack: slack,
        ChannelName.telegram: telegram,
    }


def _within_send(settings: Settings, configured: float | None = None) -> float:
    """A provider's timeout under these settings: shorter than the delivery activity's (HERALD_SEND_TIMEOUT_SECONDS),
    with a margin. Each send also gets its own activity's actual timeout (OutboundMessage.timeout), which wins
    when shorter: the workflow's policy may come from another process's settings."""
    return provider_timeout(settings.delivery.send_timeout_seconds, configured)


def _push(settings: Settings, hub: PushHub, book: ContactBook) -> Channel:
    live: PushPublisher = hub
    if settings.redis.redis_url:
        live = RedisPushPublisher(
            settings.redis.redis_url, ack_timeout=_within_send(settings, settings.push.ack_timeout_seconds)
        )
    webpush = None
    if settings.webpush.vapid_private_key is not None:
        webpush = WebPushSender(
            settings.webpush.vapid_private_key.get_secret_value(),
            book=book,
            subject=settings.webpush.vapid_subject,
            ttl=settings.webpush.webpush_ttl_seconds,
            timeout=_within_send(settings),
            link_base=settings.api_url,
            allow_private=settings.webhook.allow_private_webhooks,
        )
    return PushChannel(live, webpush)


def _email(settings: Settings) -> Channel:
    if settings.sendgrid.api_key is not None:
        return SendGridChannel(
            settings.sendgrid.api_key.get_secret_value(),
            host=settings.sendgrid.api_host,
            sender=settings.email.email_from,
            link_base=settings.api_url,
            timeout=_within_send(settings),
        )
    if settings.smtp.url is not None:
        return SmtpChannel(
            settings.smtp.url.get_secret_value(),
            sender=settings.email.email_from,
            link_base=settings.api_url,
            timeout=_within_send(settings),
        )
    preferences = preferences_link(settings.api_url)
    return _outbox(
        settings, ChannelName.email, lambda m, link: email_payload(m, settings.email.email_from, link, preferences)
    )


def _sms(settings: Settings, book: ContactBook) -> Channel:
    sid, token = settings.twilio.account_sid, settings.twilio.auth_token
    if sid and token:
        return TwilioSmsChannel(
            sid,
            token.get_secret_value(),
            book=book,
            api_base=settings.twilio.api_base,
            sender=settings.twilio.sms_from,
            messaging_service_sid=settings.twilio.messaging_service_sid,
            # Twilio can only call back a public address: without HERALD_PUBLIC_URL, no callbacks.
            status_callback_url=f"{settings.api.public_url}/v1/providers/twilio/status"
            if settings.api.public_url
            else None,
            link_base=settings.api_url,
            timeout=_within_send(settings),
        )
    return _outbox(settings, ChannelName.sms, lambda m, link: sms_payload(m, settings.twilio.sms_from, link))


def _webhook(settings: Settings, book: ContactBook) -> Channel:
    if settings.webhook.webhook_secret is None:
        return _outbox(settings, ChannelName.webhook, lambda m, _link: webhook_outbox_payload(m))
    return WebhookChannel(
        settings.webhook.webhook_secret.get_secret_value(),
        book=book,
        timeout=_within_send(settings, settings.webhook.webhook_timeout_seconds),
        allow_private=settings.webhook.allow_private_webhooks,
    )


def _chat(settings: Settings) -> Channel:
    """Apprise, always: it needs no account of Herald's, only the person's own URLs."""
    return ChatChannel(
        allowed=settings.chat.allows,
        link=lambda m: notification_link(settings.api_url, m.notification.notification_id),
        timeout=_within_send(settings, settings.chat.chat_timeout_seconds),
        allow_private=settings.webhook.allow_private_webhooks,
    )


def _slack(settings: Settings) -> Channel:
    if settings.slack.bot_token is None:
        return _outbox(settings, ChannelName.slack, slack_payload)
    return SlackChannel(
        settings.slack.bot_token.get_secret_value(),
        api_url=settings.slack.api_url,
        link_base=settings.api_url,
        timeout=_within_send(settings),
    )


def _telegram(settings: Settings) -> Channel:
    if settings.telegram.bot_token is None:
        return _outbox(settings, ChannelName.telegram, telegram_payload)
    return TelegramChannel(
        settings.telegram.bot_token.get_secret_value(),
        api_url=settings.telegram.api_url,
        link_base=settings.api_url,
        timeout=_within_send(settings),
    )


def _outbox(
    settings: Settings, channel: ChannelName, render: Callable[[OutboundMessage, str | None], dict[str, Any]]
) -> Channel:
    """The channel's provider body, written to HERALD_HOME/outbox/<channel>/ instead of sent."""
    return OutboxChannel(
        channel,
        settings.outbox_dir,
        lambda m: render(m, notification_link(settings.api_url, m.notification.notification_id)),
    )
