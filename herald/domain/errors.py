"""Delivery errors, classified once at the channel edge so the workflow can decide: retry, fall back, or stop.

Messages never carry personal data (addresses, numbers, bodies): they end up in logs and workflow history.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A channel could not deliver. `type_name` reaches the workflow as the ApplicationError type."""

    type_name = "DeliveryError"
    retryable = True

    def __init__(self, message: str, *, type_name: str | None = None) -> None:
        super().__init__(message)
        if type_name:
            self.type_name = type_name


class TransientDeliveryError(DeliveryError):
    """Worth retrying: a 5xx, a timeout, a 429. `retry_after` (seconds) overrides the backoff once."""

    type_name = "TransientDeliveryError"

    def __init__(self, message: str, *, retry_after: float | None = None, type_name: str | None = None) -> None:
        super().__init__(message, type_name=type_name)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: a bad address, a 4xx other than 429, a missing contact."""

    type_name = "PermanentDeliveryError"
    retryable = False


class ContactMissing(PermanentDeliveryError):
    type_name = "ContactMissing"


class RecipientNotConnected(PermanentDeliveryError):
    """Push found no live connection for the user: fall through to email at once, don't retry."""

    type_name = "RecipientNotConnected"


class PushNotAcked(PermanentDeliveryError):
    """A live client took the frame but didn't ack it in time: the person may be away, so email now."""

    type_name = "PushNotAcked"


# Push failures that mean "not in front of the app right now": email is the first fallback, not the order.
PUSH_UNREACHED = frozenset({RecipientNotConnected.type_name, PushNotAcked.type_name})
