"""call_agent: tell a question's agent the answer (or the expiry) at its callback_url."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.delivery import to_application_error
from herald.domain.errors import DeliveryError
from herald.models import AgentCallback, CallbackReceipt, utcnow
from herald.services.callbacks import AgentCallbacks


class AnswerActivities:
    def __init__(self, callbacks: AgentCallbacks | None) -> None:
        self._callbacks = callbacks

    @activity.defn(name="call_agent")
    async def call_agent(self, callback: AgentCallback) -> CallbackReceipt:
        """One POST; Temporal retries what may pass (5xx, 429, unreachable) on the delivery schedule."""
        if self._callbacks is None:
            raise ApplicationError(
                "agent callbacks are not configured on this worker", type="CallbacksOff", non_retryable=True
            )
        try:
            info = activity.info()
            timeout = info.start_to_close_timeout.total_seconds() if info.start_to_close_timeout else None
            return CallbackReceipt(receipt=await self._callbacks.send(callback, utcnow(), timeout))
        except DeliveryError as exc:
            raise to_application_error(exc, activity.info().attempt) from None
