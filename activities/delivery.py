"""deliver: one attempt on one channel, with the channel's verdict turned into Temporal's retry terms."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from herald.adapters.channels.base import cap_retry_after
from herald.domain.errors import DeliveryError, TransientDeliveryError
from herald.models import DeliveryFailure, DeliveryReceipt, DeliveryRequest
from herald.services.delivery import DeliveryService


def to_application_error(error: DeliveryError, attempt: int, *, local: bool = False) -> ApplicationError:
    """Permanent errors don't retry; a provider's Retry-After replaces the backoff for the next try.

    The attempt number travels in the details so the workflow can report how many tries a channel took.
    A local attempt is never retried by Temporal (the workflow moves on to the durable activity), so its
    Retry-After travels in the details too, for the workflow's timer: as `next_retry_delay` Temporal would
    back off and retry the local activity itself. Classified failures are expected and already in the
    delivery log, so they are BENIGN: no traceback.
    """
    # Capped here too, whichever channel raised it: no provider parks a channel longer than the one cap.
    retry_after = cap_retry_after(error.retry_after) if isinstance(error, TransientDeliveryError) else None
    details = DeliveryFailure(attempt=attempt, retry_after=retry_after if local else None)
    return ApplicationError(
        str(error),
        details,
        type=error.type_name,
        non_retryable=not error.retryable,
        next_retry_delay=timedelta(seconds=retry_after) if retry_after is not None and not local else None,
        category=ApplicationErrorCategory.BENIGN,
    )


class DeliveryActivities:
    def __init__(self, service: DeliveryService) -> None:
        self._service = service

    @activity.defn(name="deliver")
    async def deliver(self, request: DeliveryRequest) -> DeliveryReceipt:
        info = activity.info()
        attempt = info.attempt + request.first_attempt - 1
        try:
            # The provider's timeout derives from this activity's own, whichever process set it.
            timeout = info.start_to_close_timeout.total_seconds() if info.start_to_close_timeout else None
            return await self._service.deliver(request, attempt, timeout)
        except DeliveryError as exc:
            raise to_application_error(exc, attempt, local=info.is_local) from None
