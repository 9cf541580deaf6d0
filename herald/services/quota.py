"""The agents' quota: before a request that creates work reaches Temporal, its agent key takes a token from its
bucket (herald/domain/quota.py), or the request is refused with when to retry (QuotaExceeded: the API's 429 with
Retry-After, the client's typed error, the CLI's and MCP tools' words).

A bucket is a key's (`key:<key id>`, the API and `herald mcp`, with the key's own `--rate`/`--burst`) or, for a
HeraldClient that holds no key, its agent's (`agent:<agent_id>`, with the defaults). The buckets live in Redis when
HERALD_REDIS_URL is set, so every API process and client shares one budget per key; else in each process.

The first refusal of a burst (none for the quiet period before it; the bucket decides, atomically in Redis, so one
process raises it) records one ops alert in the store, not one per refused request. Every refusal is counted in
`herald_agent_quota_refusals{agent_id}`. A refusal happens before anything is started: it never drops, or
changes, a notification already accepted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from herald.adapters.metrics import QUOTA_ALERTS, QUOTA_REFUSALS
from herald.adapters.quota import Buckets, LocalBuckets, RedisBuckets
from herald.adapters.store import Store
from herald.config import Settings
from herald.domain.quota import ALERT_QUIET_SECONDS, Decision, Limits, retry_after_seconds

log = logging.getLogger("herald.quota")

ALERT_KIND = "agent_quota_exceeded"


class QuotaExceeded(Exception):
    """The agent's key is over its quota: nothing was started; the same request after `retry_after` seconds (whole
    seconds, rounded up) may go through. The message is safe to show: it names the agent, the limits and the wait."""

    def __init__(self, agent_id: str, limits: Limits, retry_after: float) -> None:
        self.agent_id, self.limits = agent_id, limits
        self.retry_after = retry_after_seconds(retry_after)
        super().__init__(
            f"agent {agent_id} is over its quota ({limits.describe()}): nothing was started; "
            f"retry in {self.retry_after} s"
        )


@dataclass(frozen=True)
class QuotaSubject:
    """Whose bucket a request takes from, and its limits."""

    bucket_id: str
    agent_id: str
    limits: Limits


class AgentQuota:
    """Takes a token per request for a subject; refuses with QuotaExceeded; alerts ops once per burst."""

    def __init__(self, buckets: Buckets, defaults: Limits, *, quiet_seconds: float = ALERT_QUIET_SECONDS) -> None:
        self.buckets, self.defaults, self.quiet_seconds = buckets, defaults, quiet_seconds

    @classmethod
    def from_settings(cls, settings: Settings, *, quiet_seconds: float = ALERT_QUIET_SECONDS) -> AgentQuota:
        """HERALD_AGENT_RATE / HERALD_AGENT_BURST, in Redis when HERALD_REDIS_URL is set, else in this process."""
        buckets: Buckets
        if settings.redis.redis_url:
            buckets = RedisBuckets(settings.redis.redis_url, quiet_seconds=quiet_seconds)
        else:
            buckets = LocalBuckets(quiet_seconds=quiet_seconds)
        return cls(buckets, defaults_of(settings), quiet_seconds=quiet_seconds)

    def for_key(self, key_id: str, agent_id: str, rate: float | None = None, burst: int | None = None) -> QuotaSubject:
        """An agent key's bucket, with its own limits where `herald keys issue --rate/--burst` gave them."""
        limits = Limits(
            rate=rate if rate is not None else self.defaults.rate,
            burst=burst if burst is not None else self.defaults.burst,
        )
        return QuotaSubject(f"key:{key_id}", agent_id, limits)

    def for_agent(self, agent_id: str) -> QuotaSubject:
        """An agent's bucket, for a client that sends without a key."""
        return QuotaSubject(f"agent:{agent_id}", agent_id, self.defaults)

    async def take(self, subject: QuotaSubject, store: Store | None = None) -> None:
        """One token from the subject's bucket, or QuotaExceeded (after counting it, and recording the burst's
        ops alert in `store` when this refusal opens one)."""
        decision = await self.buckets.take(subject.bucket_id, subject.limits)
        if decision.allowed:
            return
        QUOTA_REFUSALS.labels(subject.agent_id).inc()
        if decision.first_refusal:
            await self._alert(subject, decision, store)
        raise QuotaExceeded(subject.agent_id, subject.limits, decision.retry_after)

    async def _alert(self, subject: QuotaSubject, decision: Decision, store: Store | None) -> None:
        QUOTA_ALERTS.labels(subject.agent_id).inc()
        now = datetime.now(UTC)
        message = (
            f"agent {subject.agent_id} went over its quota ({subject.limits.describe()}, bucket {subject.bucket_id}) "
            f"at {now.isoformat(timespec='seconds')}: its requests are refused with 429 until tokens come back "
            f"(next in {decision.retry_after:.2f} s); one alert per burst"
        )
        log.warning("%s", message)
        if store is None:
            return
        # One row per burst: its id names the bucket and the second the burst began.
        alert_id = f"quota/{subject.bucket_id}/{now:%Y%m%dT%H%M%S}"[:128]
        try:
            await store.notifications.record_ops_alert(alert_id, ALERT_KIND, message)
        except Exception as exc:  # the store down: the refusal stands, the alert is in the log above
            log.warning("agent quota: could not record the ops alert (%s)", type(exc).__name__)

    async def aclose(self) -> None:
        await self.buckets.aclose()


def defaults_of(settings: Settings) -> Limits:
    return Limits(rate=settings.api.agent_rate, burst=settings.api.agent_burst)
