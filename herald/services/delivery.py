"""One delivery attempt, end to end: skip if the log says it already happened, send, log the attempt.

This is the logic behind the `deliver` activity; the activity only maps errors onto Temporal's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime

from herald.adapters import metrics
from herald.adapters.channels.base import Channel, OutboundMessage, provider_timeout
from herald.adapters.store import Store
from herald.domain.answers import DEFAULT_ANSWER_WINDOW_SECONDS, AnswerLinks, answer_deadline, phone_key
from herald.domain.errors import DeliveryError, TransientDeliveryError
from herald.domain.unsubscribe import unsubscribe_url
from herald.models import (
    AnswerChannel,
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryAttempt,
    DeliveryReceipt,
    DeliveryRequest,
    utcnow,
)
from herald.models.inbox import content_of

log = logging.getLogger("herald.delivery")


class DeliveryService:
    def __init__(
        self, store: Store, channels: Mapping[ChannelName, Channel], answer_links: AnswerLinks | None = None
    ) -> None:
        self.store = store
        self.channels = channels
        # Mints a question's signed answer links at send time, so the secret never enters workflow history.
        self.answer_links = answer_links

    async def deliver(
        self, request: DeliveryRequest, attempt: int, activity_timeout: float | None = None
    ) -> DeliveryReceipt:
        """Deliver once per idempotency key: a success already in the delivery log is not sent again.

        `activity_timeout` is the start_to_close of the activity making this attempt: the channel must give up on
        its provider well before it (`provider_timeout`), so the attempt is logged and Temporal never times out a
        send the provider may have taken (its retry would send it again, unlogged).
        """
        key = request.idempotency_key
        prior, contact = await self.store.notifications.delivery_context(key, request.notification.recipient)
        if prior is not None:
            metrics.count_already_delivered(request.channel)
            return DeliveryReceipt(
                channel=request.channel,
                attempt=prior.attempt,
                provider_message_id=prior.provider_message_id,
                already_delivered=True,
            )
        channel = self.channels[request.channel]
        message = await self._message(request, contact or Contact())
        backstop = None
        if activity_timeout is not None:
            budget = provider_timeout(activity_timeout)
            message = dataclasses.replace(message, timeout=budget)
            # For a channel that overruns its budget: halfway into the margin, so the failure is still logged.
            backstop = (budget + activity_timeout) / 2
        started = utcnow()
        try:
            async with asyncio.timeout(backstop):
                result = await channel.send(message)
        except TimeoutError:
            error = TransientDeliveryError(
                f"the {request.channel.value} provider did not answer in time", type_name="ChannelTimeout"
            )
            await self._log(request, attempt, started, error=error)
            raise error from None
        except DeliveryError as exc:
            await self._log(request, attempt, started, error=exc)
            raise
        except Exception as exc:  # a provider library's own failure: retry it, but never echo its text
            # The type only: a provider library's message or traceback may quote an address or a number.
            log.error("unexpected %s from the %s channel", type(exc).__name__, request.channel.value)
            error = TransientDeliveryError(f"unexpected {type(exc).__name__} in channel", type_name="ChannelCrashed")
            await self._log(request, attempt, started, error=error)
            raise error from exc
        await self._log(request, attempt, started, provider_message_id=result.provider_message_id)
        return DeliveryReceipt(channel=request.channel, attempt=attempt, provider_message_id=result.provider_message_id)

    async def _message(self, request: DeliveryRequest, contact: Contact) -> OutboundMessage:
        """The message to send; for a question, with its answer links, and an SMS question remembered by phone
        before it goes out, so that a quick reply finds it."""
        n, key = request.notification, request.idempotency_key
        links = self.answer_links
        unsubscribe = None
        if links is not None and request.channel is ChannelName.email:
            unsubscribe = unsubscribe_url(links, n, utcnow())  # every email: RFC 8058 one-click unsubscribe
        if not n.actions:
            return OutboundMessage(n, request.channel, key, contact, unsubscribe_url=unsubscribe)
        if request.channel is ChannelName.sms and contact.phone:
            await self.store.answers.record_sms_question(
                phone_key(contact.phone),
                n.notification_id,
                n.recipient,
                [action.id for action in n.actions],
                answer_deadline(n, links.window_seconds if links else DEFAULT_ANSWER_WINDOW_SECONDS),
            )
        if links is None:
            return OutboundMessage(n, request.channel, key, contact)
        action_urls = links.action_urls(n) if request.channel is ChannelName.email else {}
        respond_url = None
        if request.channel in (ChannelName.webhook, ChannelName.push):
            respond_url = links.respond_url(n, AnswerChannel(request.channel.value))
        return OutboundMessage(
            n,
            request.channel,
            key,
            contact,
            action_urls=action_urls,
            respond_url=respond_url,
            unsubscribe_url=unsubscribe,
        )

    async def _log(
        self,
        request: DeliveryRequest,
        attempt: int,
        started: datetime,
        *,
        error: DeliveryError | None = None,
        provider_message_id: str | None = None,
    ) -> None:
        logged = DeliveryAttempt(
            notification_id=request.notification.notification_id,
            workflow_id=request.workflow_id,
            channel=request.channel,
            attempt=attempt,
            idempotency_key=request.idempotency_key,
            result=ChannelStatus.failed if error else ChannelStatus.delivered,
            error_type=error.type_name if error else None,
            error=str(error) if error else None,
            provider_message_id=provider_message_id,
            started_at=started,
            finished_at=utcnow(),
        )
        n = request.notification
        # What it said goes with the attempt, so the person's inbox history can show it (herald/models/inbox.py).
        content = content_of(n, n.recipient)
        await self.store.notifications.record_attempt(logged, content)
        metrics.count_attempt(
            logged.channel, attempt, logged.result, request.notification.created_at, logged.finished_at
        )
        if error is None:
            log.info("delivered on %s (attempt %d)", request.channel.value, attempt)
        else:  # the error's type only: its text is already in the delivery log
            log.warning("%s on %s (attempt %d)", error.type_name, request.channel.value, attempt)
