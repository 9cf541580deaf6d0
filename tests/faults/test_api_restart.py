"""`herald api` killed with SIGKILL while agents post events, and started again: one notification per event.

Agents retry what the dead API did not answer with the same `event_id`. The event id is the monitor's update
id and the notification id is derived from it, so a retry of an event the dead API had already handed to
Temporal repeats that event's answer and starts nothing new: each event fires exactly one notification.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from herald.models import Contact, NotificationStatus, TriggerRule
from starter import HeraldClient
from tests.conftest import FAST_POLICY, make_settings
from tests.faults.procs import HeraldApi, eventually, herald_env
from tests.faults.scenario import scale
from worker import create_worker, open_runtime

ADMIN_KEY = "faults-admin-key-0123456789"


async def post_until_taken(
    api: httpx.AsyncClient, agent: str, seq: int, answers: dict[int, list[str]], retries: Counter[str]
) -> None:
    """An agent's post of one event, retried with the same event_id until the API takes it."""
    event = {"agent_id": agent, "event_id": f"{agent}-event-{seq}", "metrics": {"errors": 10, "seq": seq}}
    while True:
        try:
            response = await api.post("/v1/events", json=event)
        except httpx.TransportError as exc:  # the API is down, or died mid-request
            retries[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code == 503:  # Temporal did not take it yet: the answer says to retry
            retries["503"] += 1
            await asyncio.sleep(0.1)
            continue
        assert response.status_code == 202, response.text
        answers.setdefault(seq, []).append(
            ",".join(sorted(n for f in response.json()["fired"] for n in f["notification_ids"]))
        )
        return


async def test_api_sigkill_while_agents_post_fires_each_event_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    agent = f"fault-agent-{uuid.uuid4().hex[:8]}"
    queue = f"faults-api-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    settings = make_settings(home, task_queue=queue)
    events = scale(40)
    answers: dict[int, list[str]] = {}
    retries: Counter[str] = Counter()
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        store = runtime.store
        await store.put_contact("ada", Contact(email="ada@example.com"))
        await store.put_rule(
            TriggerRule(
                name="faults-errors",
                agent_id=agent,
                condition="errors > 5",
                user_ids=["ada"],
                channels=["email"],
                title="event {{ seq }} from {{ agent_id }}",
                cooldown_seconds=0,
            )
        )
        env = herald_env(
            home,
            temporal_env.client.service_client.config.target_host,
            queue,
            HERALD_DATABASE_URL=settings.resolved_database_url,
            HERALD_ADMIN_KEY=ADMIN_KEY,
        )
        api_process = HeraldApi(tmp_path / "api.log", env)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        try:
            await api_process.start()
            async with httpx.AsyncClient(base_url=api_process.url, headers=headers, timeout=30) as api:
                gate = asyncio.Semaphore(8)  # eight agents posting at once

                async def agent_post(seq: int) -> None:
                    async with gate:
                        await post_until_taken(api, agent, seq, answers, retries)

                posting = [asyncio.create_task(agent_post(seq)) for seq in range(events)]
                await eventually(lambda: len(answers) >= events // 3, "a third of the events taken", 60)
                await api_process.kill()  # requests in flight die with it
                await asyncio.sleep(0.5)
                await api_process.start()
                await asyncio.wait_for(asyncio.gather(*posting), 120)
                # An agent that never saw its answer posts the same event again: the same notification, no new one.
                for seq in range(0, events, 7):
                    await post_until_taken(api, agent, seq, answers, retries)
        finally:
            await api_process.kill()

        print(f"\nAPI SIGKILL while posting {events} events: retried {dict(retries)}")
        fired = {seq: set(ids) for seq, ids in answers.items()}
        assert all(len(ids) == 1 and "" not in ids for ids in fired.values()), (
            "each event: one answer, one notification"
        )
        notification_ids = [ids.pop() for ids in fired.values()]
        assert len(set(notification_ids)) == events
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
        results = await asyncio.gather(*(client.get_handle(n).outcome() for n in notification_ids))
        assert {r.status for r in results} == {NotificationStatus.delivered}
        recorded = await store.list_outcomes(agent_id=agent, limit=events * 2)
        assert sorted(o.outcome.notification_id for o in recorded) == sorted(notification_ids), "no extra one"
        sent = list((home / "outbox" / "email").glob("*.json"))
        assert len(sent) == events
