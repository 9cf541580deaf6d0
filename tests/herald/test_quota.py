"""The agent quota's token bucket (herald/domain/quota.py), as a pure function of its state and the time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.quota import Bucket, Limits, retry_after_seconds, take

limits_strategy = st.builds(
    Limits, rate=st.floats(min_value=0.01, max_value=1000), burst=st.integers(min_value=1, max_value=200)
)
# Gaps between requests: many at once (0), and spread out.
gaps = st.lists(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=5)), min_size=1, max_size=300)


def run(limits: Limits, times: list[float]) -> list[bool]:
    bucket: Bucket | None = None
    allowed = []
    for now in times:
        decision = take(bucket, limits, now)
        bucket = decision.bucket
        allowed.append(decision.allowed)
    return allowed


def at(gap_list: list[float]) -> list[float]:
    times, now = [], 1000.0
    for gap in gap_list:
        now += gap
        times.append(now)
    return times


@given(limits=limits_strategy, gap_list=gaps)
def test_no_window_accepts_more_than_burst_plus_rate_times_its_length(limits: Limits, gap_list: list[float]) -> None:
    times = at(gap_list)
    allowed = run(limits, times)
    accepted = [t for t, ok in zip(times, allowed, strict=True) if ok]
    for i, start in enumerate(accepted):
        for j in range(i, len(accepted)):
            window = accepted[j] - start
            assert j - i + 1 <= limits.burst + limits.rate * window + 1e-6, (start, accepted[j])


@given(limits=limits_strategy, gap_list=gaps)
def test_retry_after_is_when_the_next_token_arrives(limits: Limits, gap_list: list[float]) -> None:
    bucket: Bucket | None = None
    for now in at(gap_list):
        decision = take(bucket, limits, now)
        if not decision.allowed:
            assert decision.retry_after > 0
            assert take(decision.bucket, limits, now + decision.retry_after).allowed
            if decision.retry_after > 1e-6:
                assert not take(decision.bucket, limits, now + decision.retry_after * 0.99).allowed
        bucket = decision.bucket


def test_a_new_bucket_takes_a_whole_burst_at_once_then_refuses() -> None:
    limits = Limits(rate=2, burst=3)
    assert run(limits, [0.0] * 5) == [True, True, True, False, False]
    bucket = None
    for _ in range(3):
        bucket = take(bucket, limits, 0.0).bucket
    refused = take(bucket, limits, 0.0)
    assert (refused.allowed, refused.retry_after, refused.retry_after_seconds) == (False, 0.5, 1)


def test_only_the_first_refusal_after_a_quiet_period_opens_a_burst() -> None:
    limits = Limits(rate=1, burst=1)
    decisions = []
    bucket = None
    # 0: accepted; 0.1, 0.2: refused (the first opens a burst); 30: accepted; 30.1: refused, same burst (29.9 s
    # since the last refusal); 100: accepted; 100.5: refused, a new burst (70 s of quiet).
    for now in (0.0, 0.1, 0.2, 30.0, 30.1, 100.0, 100.5):
        decision = take(bucket, limits, now, quiet_seconds=60)
        bucket = decision.bucket
        decisions.append((decision.allowed, decision.first_refusal))
    assert decisions == [
        (True, False),
        (False, True),
        (False, False),
        (True, False),
        (False, False),
        (True, False),
        (False, True),
    ]


def test_a_clock_that_goes_back_adds_no_tokens() -> None:
    limits = Limits(rate=1, burst=1)
    spent = take(None, limits, 100.0).bucket
    assert not take(spent, limits, 50.0).allowed


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert [retry_after_seconds(s) for s in (0.001, 0.5, 1.0, 1.0000001, 2.5)] == [1, 1, 1, 2, 3]


@pytest.mark.parametrize(("rate", "burst", "field"), [(0, 1, "rate"), (-1, 1, "rate"), (1, 0, "burst")])
def test_limits_refuse_what_can_never_accept(rate: float, burst: int, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(rate=rate, burst=burst)
