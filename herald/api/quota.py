"""The agent quota at the API: a request with an agent key that would create work (a notification, a question, an
event that fires a rule) takes a token from the key's bucket first, or is refused with 429 `rate_limited` and
`Retry-After` (whole seconds), having written and started nothing. The admin key and `herald dev`'s open API are
not limited. See herald/services/quota.py.

A retry of a notification already accepted (the same `notification_id`, given by the caller) is never refused: over
the quota, the API asks Temporal whether that notification exists (a read: nothing starts, no worker needed) and, if
it is this agent's, answers the 202 it answered the first time, so a client that lost its first answer learns that
its notification was taken.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.service import RPCError

from herald.api.auth import Caller
from herald.api.deps import Services
from herald.api.errors import ApiError, ErrorBody
from herald.models import AgentNotification
from herald.services.quota import QuotaExceeded

# How long a refused request waits for Temporal to say whether its notification_id was already accepted.
RETRY_LOOKUP_TIMEOUT = timedelta(seconds=2)

RATE_LIMITED: dict[int | str, dict[str, object]] = {
    429: {
        "model": ErrorBody,
        "description": "The agent key is over its quota (`rate_limited`): nothing was started; retry after "
        "`Retry-After` seconds.",
        "headers": {
            "Retry-After": {"description": "whole seconds until the key's next token", "schema": {"type": "integer"}}
        },
    }
}


def rate_limited(exc: QuotaExceeded) -> ApiError:
    return ApiError(429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after)})


async def spend(services: Services, caller: Caller) -> None:
    """One token from an agent key's bucket, or the 429 to answer; other callers pass."""
    if caller.kind != "agent" or caller.subject is None or caller.key_id is None:
        return
    subject = services.quota.for_key(caller.key_id, caller.subject, caller.rate, caller.burst)
    try:
        await services.quota.take(subject, services.store_if_open)
    except QuotaExceeded as exc:
        raise rate_limited(exc) from None


async def spend_for_notification(services: Services, caller: Caller, notification: AgentNotification) -> None:
    """`spend`, except that a retry of this agent's notification already accepted goes through without a token."""
    try:
        await spend(services, caller)
    except ApiError:
        if "notification_id" in notification.model_fields_set and await _accepted(services, notification):
            return
        raise


async def _accepted(services: Services, notification: AgentNotification) -> bool:
    try:
        gateway = await services.client()
        parties = await gateway.parties(notification.notification_id, rpc_timeout=RETRY_LOOKUP_TIMEOUT)
    except (ApiError, RPCError):  # no such workflow, or Temporal can't say: the refusal stands
        return False
    return parties.agent_id == notification.agent_id
