"""One delivery attempt, end to end: skip if the log says it already happened, send, log the attempt.

This is the logic behind the `deliver` activity; the activity only maps errors onto Temporal's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from herald import metrics
from herald.channels.base import Channel, OutboundMessage
from herald.errors import DeliveryError, TransientDeliveryError
from herald.models import (
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryAttempt,
    DeliveryReceipt,
    DeliveryRequest,
    utcnow,
)
from herald.store import Store

log = logging.getLogger(__name__)


class DeliveryService:
    def __init__(self, store: Store, channels: Mapping[ChannelName, Channel]) -> None:
        self.store = store
        self.channels = channels

    async def deliver(self, request: DeliveryRequest, attempt: int) -> DeliveryReceipt:
        """Deliver once per idempotency key: a success already in the delivery log is not sent again."""
        key = request.idempotency_key
        prior = await self.store.find_delivered(key)
        if prior is not None:
            metrics.count_already_delivered(request.channel)
            return DeliveryReceipt(
                channel=request.channel,
                attempt=prior.attempt,
                provider_message_id=prior.provider_message_id,
                already_delivered=True,
            )
        channel = self.channels[request.channel]
        contact = await self.store.get_contact(request.notification.user_id) or Contact()
        message = OutboundMessage(request.notification, request.channel, key, contact)
        started = utcnow()
        try:
            result = await channel.send(message)
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
        await self.store.record_attempt(logged)
        metrics.count_attempt(
            logged.channel, attempt, logged.result, request.notification.created_at, logged.finished_at
        )
        if error is None:
            log.info("delivered on %s (attempt %d)", request.channel.value, attempt)
        else:  # the error's type only: its text is already in the delivery log
            log.warning("%s on %s (attempt %d)", error.type_name, request.channel.value, attempt)
