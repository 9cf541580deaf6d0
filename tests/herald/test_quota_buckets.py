"""Where the buckets live: the Lua script in the real Redis (127.0.0.1:6379, a key prefix of its own) decides as the
pure function does, its keys expire, and a Redis that can't be reached never refuses a request for that."""

from __future__ import annotations

import math
import socket
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from herald.adapters.quota import LocalBuckets, RedisBuckets
from herald.domain.quota import Bucket, Limits, idle_seconds, take
from tests.conftest import REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.floats(min_value=0.1, max_value=50),
    burst=st.integers(min_value=1, max_value=10),
    gaps=st.lists(st.one_of(st.just(0.0), st.floats(min_value=0, max_value=3)), min_size=1, max_size=40),
)
async def test_the_lua_script_decides_as_the_pure_function_does(
    redis: Redis, rate: float, burst: int, gaps: list[float]
) -> None:
    limits, clock, prefix = Limits(rate, burst), Clock(), f"test-quota-{uuid.uuid4().hex}"
    buckets = RedisBuckets(REDIS_URL, prefix=prefix, quiet_seconds=5, now=clock)
    bucket: Bucket | None = None
    try:
        for gap in gaps:
            clock.now += gap
            expected = take(bucket, limits, clock.now, quiet_seconds=5)
            bucket = expected.bucket
            got = await buckets.take("key:abc", limits)
            assert (got.allowed, got.first_refusal) == (expected.allowed, expected.first_refusal)
            assert got.retry_after == pytest.approx(expected.retry_after, abs=1e-9)
        ttl_ms = await redis.pttl(buckets.key("key:abc"))
        assert 0 < ttl_ms <= math.ceil(idle_seconds(limits, 5) * 1000)
    finally:
        await redis.delete(buckets.key("key:abc"))
        await buckets.aclose()


async def test_on_redis_s_own_clock_a_burst_is_taken_then_refused(redis: Redis) -> None:
    buckets = RedisBuckets(REDIS_URL, prefix=f"test-quota-{uuid.uuid4().hex}")
    try:
        decisions = [await buckets.take("key:abc", Limits(0.01, 3)) for _ in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert [d.first_refusal for d in decisions] == [False, False, False, True, False]
        assert 99 < decisions[3].retry_after <= 100
    finally:
        await redis.delete(buckets.key("key:abc"))
        await buckets.aclose()


async def test_an_unreachable_redis_falls_back_to_this_process_s_bucket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    buckets = RedisBuckets(f"redis://127.0.0.1:{port}/0")
    try:
        decisions = [await buckets.take("key:abc", Limits(0.01, 2)) for _ in range(3)]
    finally:
        await buckets.aclose()
    assert [d.allowed for d in decisions] == [True, True, False]


async def test_local_buckets_are_per_id_and_forget_idle_ones_as_new() -> None:
    clock = Clock()
    buckets = LocalBuckets(quiet_seconds=10, clock=clock)
    limits = Limits(1, 1)
    assert (await buckets.take("a", limits)).allowed
    assert not (await buckets.take("a", limits)).allowed
    assert (await buckets.take("b", limits)).allowed
    clock.now += idle_seconds(limits, 10)
    assert (await buckets.take("a", limits)).allowed
    refused = await buckets.take("a", limits)
    assert refused.first_refusal, "past the quiet period: a new burst"
