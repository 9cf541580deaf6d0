"""The retry schedule of a delivery whose first attempt ran on its own (a local activity, see NotificationWorkflow).

Pure: the workflow turns these numbers into Temporal's RetryPolicy and a timer.
"""

from __future__ import annotations

from herald.models import RetrySettings


def first_retry_delay(retry: RetrySettings, provider_delay: float | None) -> float:
    """Seconds to wait before the second attempt: the provider's Retry-After when it gave one."""
    return provider_delay if provider_delay is not None else retry.initial_interval_seconds


def after_first_attempt(retry: RetrySettings) -> RetrySettings | None:
    """The schedule of the remaining attempts, so the whole chain keeps the policy's intervals.

    The policy waits initial, initial*b, initial*b^2 ... (capped) between attempts. The wait before the
    second attempt is a timer in the workflow; the durable activity then starts one step further along.
    None when the policy allows no retry at all.
    """
    if retry.maximum_retries < 1:
        return None
    return RetrySettings(
        initial_interval_seconds=min(
            retry.initial_interval_seconds * retry.backoff_coefficient, retry.maximum_interval_seconds
        ),
        backoff_coefficient=retry.backoff_coefficient,
        maximum_interval_seconds=retry.maximum_interval_seconds,
        maximum_retries=retry.maximum_retries - 1,
    )
