"""Where the agents' token buckets live: in this process (LocalBuckets), or in Redis (RedisBuckets), shared by every
API process and client pointed at it. Both run herald.domain.quota.take; Redis runs the same arithmetic in one Lua
script, so a take is atomic however many processes share the bucket, and its clock is the Redis server's.

Redis keys: `{prefix}:{bucket_id}`, a hash of tokens, updated_at and refused_at, which expires once an untouched
bucket would be full again and past its quiet period (idle_seconds), so Redis keeps no bucket forever. A bucket id
names a key (`key:<hash prefix>`) or an agent (`agent:<agent_id>`), never a token.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from herald.domain.quota import ALERT_QUIET_SECONDS, Bucket, Decision, Limits, idle_seconds, take

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("herald.quota")

DEFAULT_PREFIX = "herald:quota"
REDIS_TIMEOUT = 2.0
# An in-process store forgets idle buckets once it holds this many (each is as good as new by then).
LOCAL_PRUNE_AT = 10_000


class Buckets(Protocol):
    async def take(self, bucket_id: str, limits: Limits) -> Decision:
        """Take one token from the bucket, or refuse with when the next one arrives."""
        ...

    async def aclose(self) -> None: ...


class LocalBuckets:
    """Buckets in this process's memory, on the monotonic clock: one process's own budget."""

    def __init__(
        self, *, quiet_seconds: float = ALERT_QUIET_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.quiet_seconds, self._clock = quiet_seconds, clock
        self._buckets: dict[str, tuple[Bucket, float]] = {}  # id -> (state, forget after)

    async def take(self, bucket_id: str, limits: Limits) -> Decision:
        now = self._clock()
        kept = self._buckets.get(bucket_id)
        bucket = kept[0] if kept is not None and kept[1] > now else None
        decision = take(bucket, limits, now, quiet_seconds=self.quiet_seconds)
        if len(self._buckets) >= LOCAL_PRUNE_AT:
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > now}
        self._buckets[bucket_id] = (decision.bucket, now + idle_seconds(limits, self.quiet_seconds))
        return decision

    async def aclose(self) -> None:
        return None


# herald.domain.quota.take in Lua, on the Redis server's clock (ARGV[4], when given, stands in for it: tests).
# KEYS[1] the bucket; ARGV: rate, burst, quiet seconds, now or "". Returns {allowed, retry_after, first_refusal}
# (retry_after as a string: Redis turns Lua numbers into integers).
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quiet = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local epsilon = 1e-9
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at', 'refused_at')
local tokens = burst
local refused_at = tonumber(state[3])
if state[1] then
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(burst, tonumber(state[1]) + elapsed * rate)
end
local allowed = 0
local retry_after = 0
local first = 0
if tokens >= 1 - epsilon then
  allowed = 1
  tokens = math.max(0, tokens - 1)
else
  if (not refused_at) or now - refused_at >= quiet then
    first = 1
  end
  retry_after = (1 - tokens) / rate
  refused_at = now
end
local fields = {'tokens', string.format('%.17g', tokens), 'updated_at', string.format('%.17g', now)}
if refused_at then
  table.insert(fields, 'refused_at')
  table.insert(fields, string.format('%.17g', refused_at))
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]))
return {allowed, string.format('%.17g', retry_after), first}
"""


class RedisBuckets:
    """Buckets in Redis, shared by every process that names the same Redis and prefix.

    When Redis can't be reached, a take falls back to this process's own bucket (LocalBuckets) and logs that it
    did (the error's type only: a Redis URL may hold a password): the quota degrades to one per process, and
    never refuses, or loses, a request because Redis is down."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        quiet_seconds: float = ALERT_QUIET_SECONDS,
        now: Callable[[], float] | None = None,
    ) -> None:
        # Imported here: every HeraldClient makes a quota, and most never use Redis (a tenth of a second of CPU).
        from redis.asyncio import Redis

        self.prefix, self.quiet_seconds, self._now = prefix, quiet_seconds, now
        self._redis: Redis = Redis.from_url(
            redis_url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        self._script = self._redis.register_script(TAKE_SCRIPT)
        self._fallback = LocalBuckets(quiet_seconds=quiet_seconds)
        self._warned = False

    def key(self, bucket_id: str) -> str:
        return f"{self.prefix}:{bucket_id}"

    async def take(self, bucket_id: str, limits: Limits) -> Decision:
        from redis.exceptions import RedisError

        ttl_ms = math.ceil(idle_seconds(limits, self.quiet_seconds) * 1000)
        now = "" if self._now is None else repr(self._now())
        args = [repr(float(limits.rate)), str(limits.burst), repr(float(self.quiet_seconds)), now, str(ttl_ms)]
        try:
            allowed, retry_after, first = await asyncio.wait_for(
                self._script(keys=[self.key(bucket_id)], args=args), REDIS_TIMEOUT
            )
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._warned:
                log.warning("agent quota: Redis unreachable (%s); counting in this process", type(exc).__name__)
                self._warned = True
            return await self._fallback.take(bucket_id, limits)
        self._warned = False
        # The state stays in Redis; the Decision's bucket is not this process's to keep.
        return Decision(bool(allowed), Bucket(0.0, 0.0), float(retry_after), bool(first))

    async def aclose(self) -> None:
        await self._redis.aclose()
