"""A question to a group survives its worker: `herald worker` SIGKILLed after the first of two approvals a quorum
needs, started again, and the second approval decides it; the third member's question is closed by the decision,
and the group's outcome holds both answers."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from herald.adapters.store import Store
from herald.domain.teams import member_notification_id
from herald.models import Action, AgentNotification, ChannelName, Contact, Group, NotificationStatus, utcnow
from starter import HeraldClient
from tests.faults.procs import eventually, herald_env, herald_worker
from tests.faults.scenario import FAULT_POLICY


async def test_a_quorum_survives_a_worker_sigkill_between_two_approvals(
    temporal_env: WorkflowEnvironment, sqlite_url: str, tmp_path: Path
) -> None:
    queue = f"faults-team-{uuid.uuid4().hex[:8]}"
    env = herald_env(
        tmp_path / "home", temporal_env.client.service_client.config.target_host, queue, HERALD_DATABASE_URL=sqlite_url
    )
    suffix = uuid.uuid4().hex[:6]
    users = [f"{name}-{suffix}" for name in ("ada", "grace", "linus")]
    store = await Store.open(sqlite_url)
    try:
        for user in users:
            await store.users.put_contact(user, Contact(email=f"{user}@example.com"))
        now = utcnow()
        await store.groups.put(Group(name=f"sre-{suffix}", members=users, created_at=now, updated_at=now))
    finally:
        await store.close()

    worker = herald_worker(tmp_path / "worker.log", env)
    client = HeraldClient(temporal_env.client, queue, FAULT_POLICY)
    question = AgentNotification(
        agent_id="deploy-agent",
        group=f"sre-{suffix}",
        title="Ship the release?",
        channels=[ChannelName.email],
        actions=[Action(id="approve", label="Approve"), Action(id="deny", label="Deny")],
        respond_by=utcnow() + timedelta(minutes=10),
        quorum={"action": "approve", "count": 2},  # type: ignore[arg-type]
    )
    member = {user: member_notification_id(question.notification_id, user) for user in users}

    async def asked(user: str) -> bool:
        try:
            status = await client.get_handle(member[user]).status()
        except Exception:  # not started yet, or no worker to answer the query
            return False
        return ChannelName.email in status.delivered_channels

    async def counted() -> bool:
        return len((await client.get_handle(question.notification_id).status()).answers) == 1

    try:
        await worker.start()
        handle = await client.notify(question)
        for user in users:
            await eventually(lambda user=user: asked(user), f"{user}'s question", 60)
        await client.respond(member[users[0]], "approve", users[0])
        await eventually(counted, "the first approval at the group", 60)

        await worker.kill()
        await worker.start()

        # The dead worker's sticky queue holds grace's next task until it times out: ask once the new worker answers.
        await eventually(lambda: asked(users[1]), "the new worker answering for grace's question", 60)
        await client.respond(member[users[1]], "approve", users[1])
        outcome = await handle.outcome()
    finally:
        await worker.kill()
        await temporal_env.client.get_schedule_handle(f"retention-{queue}").delete()

    assert outcome.status is NotificationStatus.answered and outcome.decision is not None
    assert outcome.decision.by == users[:2] and outcome.decision.text == f"Approved by {users[0]} and {users[1]}"
    assert [(a.user_id, a.action_id) for a in outcome.answers] == [(users[0], "approve"), (users[1], "approve")]
    third = await client.get_handle(member[users[2]]).outcome()
    assert third.status is NotificationStatus.answered and third.answer is None
    assert third.decision == outcome.decision
