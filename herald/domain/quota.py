"""An agent's quota: a token bucket per agent key (HERALD_AGENT_RATE per second, HERALD_AGENT_BURST at most).

The decision is this pure function; the buckets' state lives in-process or in Redis (herald/adapters/quota.py),
which runs the same arithmetic in one Lua script. A bucket starts full; each accepted request takes one token; a
token comes back every 1/rate seconds, up to `burst`. So in any window of t seconds at most burst + rate * t
requests are accepted, and a refused request learns when the next token arrives (`retry_after`).

The bucket also remembers its last refusal, so the first refusal after a quiet period (no refusals for
`quiet_seconds`) can raise one ops alert for the burst instead of one per refused request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A refusal is the first of a new burst when the bucket's previous refusal is at least this long ago.
ALERT_QUIET_SECONDS = 60.0
# Float slack: a token that is due now (after the arithmetic's rounding) counts as there.
EPSILON = 1e-9


@dataclass(frozen=True)
class Limits:
    """How many requests per second a key may make (rate), and how many at once after a quiet spell (burst)."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError("rate: must be a positive number of requests per second")
        if self.burst < 1:
            raise ValueError("burst: must be at least 1")

    def describe(self) -> str:
        return f"{self.rate:g}/s, burst {self.burst}"


@dataclass(frozen=True)
class Bucket:
    """A bucket's state: tokens left at `updated_at` (seconds, any clock), and its last refusal's time."""

    tokens: float
    updated_at: float
    refused_at: float | None = None


@dataclass(frozen=True)
class Decision:
    """Whether the request may go ahead; the bucket to keep; when refused, the seconds until the next token and
    whether this refusal opens a burst (no refusal for the quiet period before it)."""

    allowed: bool
    bucket: Bucket
    retry_after: float = 0.0
    first_refusal: bool = False

    @property
    def retry_after_seconds(self) -> int:
        """`retry_after` in whole seconds, rounded up (at least 1): what a Retry-After header says."""
        return retry_after_seconds(self.retry_after)


def retry_after_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - EPSILON))


def refill(bucket: Bucket | None, limits: Limits, now: float) -> float:
    """Tokens in the bucket at `now`: a new bucket is full; a clock that went back adds nothing."""
    if bucket is None:
        return float(limits.burst)
    elapsed = max(0.0, now - bucket.updated_at)
    return min(float(limits.burst), bucket.tokens + elapsed * limits.rate)


def take(bucket: Bucket | None, limits: Limits, now: float, *, quiet_seconds: float = ALERT_QUIET_SECONDS) -> Decision:
    """Take one token from `bucket` at `now`, or refuse and say when the next one arrives."""
    tokens = refill(bucket, limits, now)
    refused_at = bucket.refused_at if bucket is not None else None
    if tokens >= 1.0 - EPSILON:
        return Decision(True, Bucket(max(0.0, tokens - 1.0), now, refused_at))
    first = refused_at is None or now - refused_at >= quiet_seconds
    return Decision(False, Bucket(tokens, now, now), (1.0 - tokens) / limits.rate, first)


def idle_seconds(limits: Limits, quiet_seconds: float = ALERT_QUIET_SECONDS) -> float:
    """How long a bucket untouched is worth keeping: after this it is full again and its last refusal is
    past the quiet period, exactly as a new bucket would be (a store may forget it then, e.g. a Redis TTL)."""
    return limits.burst / limits.rate + quiet_seconds
