"""The agent quota at the API, against a real worker and dev server: an agent key's burst is accepted, the next
request is a 429 with Retry-After that starts and writes nothing, and after the wait it is accepted again; a retry of
an accepted notification is never refused; the first refusal of a burst records one ops alert; /metrics counts the
refusals per agent. Two API processes on one Redis share one budget.

The registry behind /metrics is the process's, so each test sends as an agent id of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from redis.asyncio import Redis
from temporalio.service import RPCError, RPCStatusCode

from herald.adapters.quota import RedisBuckets
from herald.adapters.store import Store, schema
from herald.api.app import create_app
from herald.domain.quota import Limits
from herald.models import Contact, TriggerRule
from herald.services.auth import issue_token
from herald.services.quota import ALERT_KIND, AgentQuota
from tests.conftest import REDIS_URL, Harness

ADMIN_KEY = "admin-" + "q" * 40


@dataclass
class Api:
    http: httpx.AsyncClient
    agent: str

    async def notify(self, key: str, **fields: Any) -> httpx.Response:
        body = {"agent_id": self.agent, "user_id": "ada", "title": f"t-{uuid.uuid4().hex[:8]}", "channels": ["email"]}
        body.update(fields)
        return await self.http.post("/v1/notifications", json=body, headers={"Authorization": f"Bearer {key}"})


def app_for(herald: Harness, quota: AgentQuota | None = None) -> httpx.AsyncClient:
    # The defaults are generous (HERALD_AGENT_BURST 100): each test's key brings its own quota, as --rate does.
    settings = herald.settings.changed(auth=True, admin_key=SecretStr(ADMIN_KEY))
    app = create_app(settings, store=herald.store, client=herald.client, quota=quota)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test")


@pytest.fixture
async def api(herald: Harness) -> AsyncIterator[Api]:
    async with app_for(herald) as http:
        yield Api(http, f"quota-{uuid.uuid4().hex[:10]}")


async def started(herald: Harness, notification_id: str) -> bool:
    try:
        await herald.client.parties(notification_id)
    except RPCError as exc:
        assert exc.status is RPCStatusCode.NOT_FOUND
        return False
    return True


async def quota_alerts(store: Store) -> list[str]:
    t = schema.ops_alerts
    query = sa.select(t.c.message).where(t.c.kind == ALERT_KIND)
    return await store.read(lambda conn: [row.message for row in conn.execute(query)])


def refusals(metrics: str, agent: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f'herald_agent_quota_refusals_total{{agent_id="{agent}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_rate_limited(response: httpx.Response, next_token: int) -> int:
    """A 429 in the error shape whose Retry-After is the whole seconds until the next token: `next_token` when the
    bucket was just emptied, less by the seconds the test has run since (a loaded machine may take a few)."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert next_token - 30 < retry_after <= next_token, retry_after
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("rate_limited", None)
    assert f"retry in {retry_after} s" in error["message"] and "nothing was started" in error["message"]
    return retry_after


async def test_a_burst_is_accepted_then_refused_with_retry_after_starting_and_writing_nothing(
    api: Api, herald: Harness
) -> None:
    key = await issue_token(herald.store, "agent", api.agent, rate=0.01, burst=3)
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    for _ in range(3):
        assert (await api.notify(key)).status_code == 202
    refused_ids = [uuid.uuid4().hex for _ in range(5)]
    for nid in refused_ids:
        assert_rate_limited(await api.notify(key, notification_id=nid), 100)  # 0.01/s: a token per 100 s
    for nid in refused_ids:
        assert not await started(herald, nid)
        assert await herald.store.notifications.attempts(nid) == []
        assert await herald.store.notifications.get_content(nid) is None
    [alert] = await quota_alerts(herald.store)  # one for the burst, not one per refusal
    assert api.agent in alert and "0.01/s, burst 3" in alert and key not in alert
    metrics = (await api.http.get("/metrics")).text
    assert refusals(metrics, api.agent) == 5
    assert key not in metrics


async def test_after_waiting_retry_after_the_key_is_accepted_again(api: Api, herald: Harness) -> None:
    key = await issue_token(herald.store, "agent", api.agent, rate=1, burst=1)
    assert (await api.notify(key)).status_code == 202
    refused = await api.notify(key)
    assert_rate_limited(refused, 1)
    await asyncio.sleep(int(refused.headers["Retry-After"]))  # what a client does with Retry-After
    assert (await api.notify(key)).status_code == 202


async def test_a_retry_of_an_accepted_notification_is_answered_as_before_over_the_quota(
    api: Api, herald: Harness
) -> None:
    key = await issue_token(herald.store, "agent", api.agent, rate=0.01, burst=1)
    nid = uuid.uuid4().hex
    first = await api.notify(key, notification_id=nid, title="Deploy finished")
    assert first.status_code == 202
    again = await api.notify(key, notification_id=nid, title="Deploy finished")  # over the quota now
    assert (again.status_code, again.json()) == (202, first.json())
    assert_rate_limited(await api.notify(key), 100)
    # another agent's id is no way around the quota
    other = f"{api.agent}-b"
    other_key = await issue_token(herald.store, "agent", other, rate=0.01, burst=1)
    assert (await api.notify(other_key, agent_id=other)).status_code == 202
    assert (await api.notify(other_key, agent_id=other, notification_id=nid)).status_code == 429


async def test_each_key_has_its_own_bucket_and_the_admin_key_none(api: Api, herald: Harness) -> None:
    limited = await issue_token(herald.store, "agent", api.agent, rate=0.01, burst=1)
    default = await issue_token(herald.store, "agent", api.agent)  # HERALD_AGENT_BURST: 100
    assert (await api.notify(limited)).status_code == 202
    assert (await api.notify(limited)).status_code == 429
    for _ in range(3):
        assert (await api.notify(default)).status_code == 202
        assert (await api.notify(ADMIN_KEY)).status_code == 202


async def test_an_event_that_fires_takes_a_token_and_one_that_matches_nothing_is_free(
    api: Api, herald: Harness
) -> None:
    await herald.store.rules.put_rule(
        TriggerRule(name=f"r-{api.agent}", agent_id=api.agent, condition="error_rate > 0.5", user_ids=["ada"])
    )
    key = await issue_token(herald.store, "agent", api.agent, rate=0.01, burst=1)
    headers = {"Authorization": f"Bearer {key}"}

    async def event(error_rate: float, event_id: str) -> httpx.Response:
        body = {"agent_id": api.agent, "metrics": {"error_rate": error_rate}, "event_id": event_id}
        return await api.http.post("/v1/events", json=body, headers=headers)

    fired = await event(0.9, "evt-1")
    assert fired.status_code == 202 and fired.json()["fired"], fired.text
    refused = await event(0.9, "evt-2")
    assert_rate_limited(refused, 100)
    quiet = await event(0.1, "evt-3")  # matches nothing: no token, no Temporal
    assert (quiet.status_code, quiet.json()["fired"]) == (202, [])
    assert await quota_alerts(herald.store) != []


@pytest.fixture
async def redis_prefix(redis: Redis) -> AsyncIterator[str]:
    prefix = f"test-quota-{uuid.uuid4().hex}"
    try:
        yield prefix
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)


async def test_two_api_processes_on_one_redis_share_one_budget(herald: Harness, redis_prefix: str) -> None:
    agent = f"quota-{uuid.uuid4().hex[:10]}"
    key = await issue_token(herald.store, "agent", agent, rate=0.01, burst=4)
    # Each its own AgentQuota and Redis connection, as two `herald api` processes with one HERALD_REDIS_URL have.
    quotas = [AgentQuota(RedisBuckets(REDIS_URL, prefix=redis_prefix), Limits(10, 100)) for _ in range(2)]
    try:
        async with app_for(herald, quotas[0]) as a, app_for(herald, quotas[1]) as b:
            apis = [Api(a, agent), Api(b, agent)]
            answers = [await apis[i % 2].notify(key) for i in range(8)]  # alternating, as a load balancer would
            assert [r.status_code for r in answers] == [202] * 4 + [429] * 4
            for response in answers[4:]:
                assert_rate_limited(response, 100)
            assert len(await quota_alerts(herald.store)) == 1  # the burst's first refusal, by whichever saw it
    finally:
        for quota in quotas:
            await quota.aclose()
