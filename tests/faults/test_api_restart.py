"""`herald api` killed with SIGKILL while agents post events and notifications, and started again.

Agents retry what the dead API did not answer, with the same `event_id` or `notification_id`. Events go to a
rule with a cooldown, so each crosses the agent's monitor (`monitor/<agent_id>`, update-with-start): the event
id is the monitor's update id and the notification id derives from it, so a retry of an event the dead API had
already handed to Temporal repeats that event's answer and starts nothing new. A resent `notification_id`
starts no second workflow. Counted at the SendGrid fake: every event's notification and every posted
notification reaches the provider exactly once.
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
from tests.faults.ledger import Ledger, keys, tally
from tests.faults.procs import HeraldApi, eventually, herald_env
from tests.faults.scenario import provider_env, record_result, scale
from worker import create_worker, open_runtime

ADMIN_KEY = "faults-admin-key-0123456789"


async def until_taken(
    api: httpx.AsyncClient, path: str, body: dict[str, object], retries: Counter[str]
) -> httpx.Response:
    """One agent's post, retried with the same body (the same id) until the API takes it."""
    while True:
        try:
            response = await api.post(path, json=body)
        except httpx.TransportError as exc:  # the API is down, or died mid-request
            retries[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code == 503:  # Temporal did not take it yet: the answer says to retry
            retries["503"] += 1
            await asyncio.sleep(0.1)
            continue
        assert response.status_code == 202, response.text
        return response


async def test_api_sigkill_while_agents_post_fires_each_event_once(
    temporal_env: WorkflowEnvironment, ledger: Ledger, tmp_path: Path
) -> None:
    """It used to use a rule without a cooldown (so no event crossed the monitor), resend no notification_id
    across the kill, and count Herald's own outbox instead of a provider."""
    run = uuid.uuid4().hex[:8]
    queue = f"faults-api-{run}"
    home = tmp_path / "home"
    settings = make_settings(home, task_queue=queue, **provider_env(ledger))
    count = scale(40)
    # One agent per event: the rule's cooldown is per agent, so each agent's one event fires, through its monitor.
    agents = [f"fault-agent-{run}-{seq}" for seq in range(count)]
    fired: dict[int, list[str]] = {}
    started: dict[int, list[str]] = {}
    retries: Counter[str] = Counter()
    async with (
        open_runtime(settings) as runtime,
        create_worker(temporal_env.client, runtime, queue, workflow_failure_exception_types=[Exception]),
    ):
        store = runtime.store
        await store.users.put_contact("ada", Contact(email="ada@example.com"))
        await store.rules.put_rule(
            TriggerRule(
                name=f"faults-errors-{run}",
                agent_id="*",
                condition="errors > 5",
                user_ids=["ada"],
                channels=["email"],
                title="event {{ seq }} from {{ agent_id }}",
                cooldown_seconds=300,
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

        async def post_event(api: httpx.AsyncClient, seq: int) -> None:
            event = {"agent_id": agents[seq], "event_id": f"event-{seq}", "metrics": {"errors": 10, "seq": seq}}
            answer = (await until_taken(api, "/v1/events", event, retries)).json()
            fired.setdefault(seq, []).append(
                ",".join(sorted(n for f in answer["fired"] for n in f["notification_ids"]))
            )

        async def post_notification(api: httpx.AsyncClient, seq: int) -> None:
            body = {
                "notification_id": f"direct-{run}-{seq}",
                "agent_id": agents[seq],
                "user_id": "ada",
                "title": f"direct {seq}",
                "channels": ["email"],
            }
            started.setdefault(seq, []).append(
                (await until_taken(api, "/v1/notifications", body, retries)).json()["workflow_id"]
            )

        try:
            await api_process.start()
            async with httpx.AsyncClient(base_url=api_process.url, headers=headers, timeout=30) as api:
                gate = asyncio.Semaphore(8)  # eight agents posting at once

                async def agent(seq: int) -> None:
                    async with gate:
                        await post_event(api, seq)
                        await post_notification(api, seq)

                posting = [asyncio.create_task(agent(seq)) for seq in range(count)]
                await eventually(lambda: len(fired) >= count // 3, "a third of the events taken", 60)
                await api_process.kill()  # requests in flight die with it
                await asyncio.sleep(0.5)
                await api_process.start()
                await asyncio.wait_for(asyncio.gather(*posting), 120)
                # An agent that never saw its answer posts the same event and notification again: nothing new.
                for seq in range(0, count, 7):
                    await post_event(api, seq)
                    await post_notification(api, seq)
        finally:
            await api_process.kill()

        print(f"\nAPI SIGKILL while posting {count} events and {count} notifications: retried {dict(retries)}")
        answers = {seq: set(ids) for seq, ids in fired.items()}
        assert all(len(ids) == 1 and "" not in ids for ids in answers.values()), "each event: one answer, one firing"
        assert all(len(set(ids)) == 1 for ids in started.values()), "each resent notification_id: the same workflow"
        notification_ids = [ids.pop() for ids in answers.values()] + [f"direct-{run}-{seq}" for seq in range(count)]
        assert len(set(notification_ids)) == 2 * count
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
        results = await asyncio.gather(*(client.get_handle(n).outcome() for n in notification_ids))
        assert {r.status for r in results} == {NotificationStatus.delivered}
    await ledger.settled()
    counted = tally(keys(notification_ids, ["email"]), ledger.accepted)
    print(counted.summary())
    record_result("api-sigkill", counted, retried=dict(retries))
    assert not counted.lost and not counted.duplicates and not counted.unexpected, counted.summary()
