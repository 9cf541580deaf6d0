"""The retry schedule after a local first attempt keeps the policy's intervals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.retry import after_first_attempt, first_retry_delay
from herald.models import RetrySettings


def waits(retry: RetrySettings) -> list[float]:
    """The waits between attempts that Temporal's retry policy gives for these settings."""
    return [
        min(retry.initial_interval_seconds * retry.backoff_coefficient**n, retry.maximum_interval_seconds)
        for n in range(retry.maximum_retries)
    ]


def test_the_default_schedule_is_30s_2min_8min_either_way() -> None:
    default = RetrySettings()
    later = after_first_attempt(default)
    assert later is not None
    assert [first_retry_delay(default, None), *waits(later)] == waits(default) == [30.0, 120.0, 480.0]


def test_a_providers_retry_after_replaces_the_first_wait() -> None:
    assert first_retry_delay(RetrySettings(), 3.5) == 3.5


def test_no_retries_means_no_durable_attempt() -> None:
    assert after_first_attempt(RetrySettings(maximum_retries=0)) is None


@given(
    initial=st.floats(min_value=0.1, max_value=120),
    backoff=st.floats(min_value=1, max_value=8),
    maximum=st.floats(min_value=0.1, max_value=3600),
    retries=st.integers(min_value=1, max_value=8),
)
def test_local_first_then_durable_equals_the_policy(
    initial: float, backoff: float, maximum: float, retries: int
) -> None:
    retry = RetrySettings(
        initial_interval_seconds=initial,
        backoff_coefficient=backoff,
        maximum_interval_seconds=maximum,
        maximum_retries=retries,
    )
    later = after_first_attempt(retry)
    assert later is not None and later.maximum_retries == retries - 1
    # The timer waits the policy's initial interval (Temporal doesn't cap that one); the rest as the policy.
    expected = [initial, *waits(retry)[1:]]
    got = [first_retry_delay(retry, None), *waits(later)]
    assert got == pytest.approx(expected)
