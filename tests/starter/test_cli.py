"""The `herald` CLI and the standalone worker, run as processes against the session's dev server."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from herald.models import AgentNotification, ChannelName, Contact, NotificationStatus, Preferences, utcnow
from starter import HeraldClient
from tests.conftest import FAST_POLICY, Harness
from tests.starter.cli import HERALD, clean_env, run_cli


def cli_env(herald: Harness, temporal_env: WorkflowEnvironment) -> dict[str, str]:
    return clean_env(
        HERALD_HOME=str(herald.settings.store.home),
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=herald.client.task_queue,
    )


async def test_prefs_set_and_get(herald: Harness, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    env = cli_env(herald, temporal_env)
    prefs = {"default": {"push": True, "email": True, "sms": False}, "agents": {"batch-agent": {"email": False}}}
    (tmp_path / "prefs.json").write_text(json.dumps(prefs))
    code, out, err = await run_cli(env, "prefs", "set", "ada", str(tmp_path / "prefs.json"))
    assert code == 0, err
    code, out, _ = await run_cli(env, "prefs", "get", "ada")
    assert code == 0 and json.loads(out) == prefs
    assert (await herald.store.users.get_preferences("ada")).agents["batch-agent"].email is False


async def test_bad_input_names_the_field_and_changes_nothing(
    herald: Harness, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = cli_env(herald, temporal_env)
    (tmp_path / "bad.json").write_text(json.dumps({"default": {"fax": True}}))
    code, _, err = await run_cli(env, "prefs", "set", "ada", str(tmp_path / "bad.json"))
    assert code == 2 and "error: default.fax: is not a known field" in err
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = await run_cli(env, "prefs", "set", "ada", str(tmp_path / "broken.json"))
    assert code == 2 and "not valid JSON" in err
    code, _, err = await run_cli(env, "notify", "--agent", "a", "--user", "ada", "--title", " ")
    assert code == 2 and "error: title: must not be empty" in err
    code, _, err = await run_cli(env, "notify", "--agent", "a", "--title", "t")
    assert code == 2 and "error: group: give exactly one of user_id or group" in err
    code, _, err = await run_cli(env, "notify", "--agent", "a", "--user", "ada", "--group", "sre", "--title", "t")
    assert code == 2 and "error: group: give exactly one of user_id or group" in err
    assert await herald.store.users.get_preferences("ada") == Preferences(), "nothing was saved"


async def test_notify_wait_then_status(herald: Harness, temporal_env: WorkflowEnvironment) -> None:
    env = cli_env(herald, temporal_env)
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    args = ["notify", "--agent", "deploy-bot", "--user", "ada", "--title", "Deploy finished"]
    code, out, err = await run_cli(env, *args, "--channel", "email", "--priority", "high", "--wait")
    assert code == 0, err
    result = json.loads(out)
    assert result["workflow_id"] == f"notification/{result['notification_id']}"
    assert result["outcome"]["status"] == "delivered"

    code, out, err = await run_cli(env, "status", result["notification_id"])
    assert code == 0, err
    assert out.splitlines()[0] == f"notification/{result['notification_id']}: delivered (high, deploy-bot -> ada)"
    assert "email    delivered" in out and "#1 delivered" in out

    code, _, err = await run_cli(env, "status", "no-such-notification")
    assert code == 1 and "no notification no-such-notification" in err


async def test_notify_a_group_with_wait(herald: Harness, temporal_env: WorkflowEnvironment) -> None:
    from herald.models import Group, utcnow

    env = cli_env(herald, temporal_env)
    for user in ("ada", "grace"):
        await herald.store.users.put_contact(user, Contact(email=f"{user}@example.com"))
    now = utcnow()
    await herald.store.groups.put(Group(name="pair", members=["ada", "grace"], created_at=now, updated_at=now))
    args = ["notify", "--agent", "deploy-bot", "--group", "pair", "--title", "Deploy finished", "--channel", "email"]
    code, out, err = await run_cli(env, *args, "--wait")
    assert code == 0, err
    outcome = json.loads(out)["outcome"]
    assert outcome["status"] == "delivered" and outcome["user_id"] == "group:pair"
    assert {user: m["channels"] for user, m in outcome["members"].items()} == {"ada": ["email"], "grace": ["email"]}
    notification_id = json.loads(out)["notification_id"]
    code, out, err = await run_cli(env, "status", notification_id)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"notification/{notification_id}: delivered (medium, deploy-bot -> group:pair)"
    assert f"  member ada: delivered on email [{notification_id}.ada]" in lines
    assert f"  member grace: delivered on email [{notification_id}.grace]" in lines


async def test_standalone_worker_from_environment(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """`herald worker` configured only by TEMPORAL_ADDRESS, HERALD_TASK_QUEUE and HERALD_HOME."""
    queue = f"standalone-{uuid.uuid4().hex[:8]}"
    env = clean_env(
        HERALD_HOME=str(tmp_path / "home"),
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=queue,
    )
    worker = await asyncio.create_subprocess_exec(
        HERALD, "worker", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        client = HeraldClient(temporal_env.client, queue, FAST_POLICY)
        notification = AgentNotification(agent_id="a", user_id="nobody", title="t", channels=[ChannelName.push])
        outcome = await asyncio.wait_for((await client.notify(notification)).outcome(), 60)
        # nobody connected, no email address: both fail, and the worker says so in the outcome
        assert outcome.status is NotificationStatus.failed
        assert outcome.channels[ChannelName.email].error_type == "ContactMissing"
        assert (tmp_path / "home" / "herald.db").exists(), "the worker's store is under HERALD_HOME"
    finally:
        worker.terminate()
        await worker.wait()


async def test_notify_with_a_group_key_ends_grouped_and_its_group_sends_them(
    herald: Harness, temporal_env: WorkflowEnvironment
) -> None:
    """Two `herald notify --group-key` runs end `grouped` and the group's message carries both. Each run is a process
    of its own, so the second may come after the first's 1-second wait: a 1-second interval sends it then (one
    message or two; tests/workflows/test_group.py counts them)."""
    from herald.domain.grouping import group_workflow_id
    from tests.faults.procs import eventually

    env = cli_env(herald, temporal_env)
    user = f"ada-{uuid.uuid4().hex[:8]}"
    await herald.store.users.put_contact(user, Contact(email="ada@example.com"))
    args = ["notify", "--agent", "shop-bot", "--user", user, "--channel", "email", "--group-key", "checkout/eu"]
    results = []
    for i in range(2):
        timing = ["--group-wait", "1", "--group-interval", "1"]
        code, out, err = await run_cli(env, *args, "--title", f"checkout error {i}", *timing, "--wait")
        assert code == 0, err
        results.append(json.loads(out))
    assert {r["outcome"]["status"] for r in results} == {"grouped"}
    assert {r["outcome"]["group_id"] for r in results} == {group_workflow_id(user, "shop-bot", "checkout/eu")}

    async def carried() -> bool:
        recorded = [await herald.store.notifications.get_outcome(r["notification_id"]) for r in results]
        return all(o is not None and o.group_delivery is not None for o in recorded)

    await eventually(carried, "the group's message on both")
    recorded = [await herald.store.notifications.get_outcome(r["notification_id"]) for r in results]
    assert all(
        o is not None and o.group_delivery is not None and o.delivered_channels == [ChannelName.email] for o in recorded
    )

    code, out, err = await run_cli(env, "status", results[0]["notification_id"])
    assert code == 0, err
    message_id = recorded[0].group_delivery.notification_id if recorded[0] and recorded[0].group_delivery else None
    assert f"grouped in {group_workflow_id(user, 'shop-bot', 'checkout/eu')}: sent in {message_id} (delivered" in out

    code, _, err = await run_cli(env, *args, "--title", "x", "--group-interval", "0")
    assert code == 2 and "error: group_interval_seconds:" in err


async def test_notify_with_an_escalation_policy_escalates_along_it(
    herald: Harness, temporal_env: WorkflowEnvironment
) -> None:
    """`herald notify --escalation-policy`: its one step's person is asked, acks, and the outcome says who."""
    from herald.domain.oncall import child_notification_id
    from herald.models.oncall import EscalationPolicy
    from tests.faults.procs import eventually

    env = cli_env(herald, temporal_env)
    ada = f"ada-{uuid.uuid4().hex[:8]}"
    await herald.store.users.put_contact(ada, Contact(email="ada@example.com"))
    name = f"p-{uuid.uuid4().hex[:6]}"
    await herald.store.oncall.put_policy(
        EscalationPolicy(name=name, updated_at=utcnow(), steps=[{"targets": [f"user:{ada}"], "ack_within_seconds": 60}])
    )
    args = ["notify", "--agent", "db-agent", "--user", "owner", "--channel", "email", "--title", "Disk full"]
    code, out, err = await run_cli(env, *args, "--escalation-policy", name)
    assert code == 0, err
    notification_id = json.loads(out)["notification_id"]
    child = child_notification_id(notification_id, 0, 0, ada)

    async def asked() -> bool:
        try:
            return bool((await herald.client.get_handle(child).status()).delivered_channels)
        except Exception:
            return False

    await eventually(asked, "ada asked")
    await herald.client.respond(child, "ack", ada)
    outcome = await herald.client.get_handle(notification_id).outcome()
    assert outcome.status.value == "confirmed" and outcome.escalation is not None
    assert outcome.escalation.acked is not None and outcome.escalation.acked.by == ada
    code, out, err = await run_cli(env, "status", notification_id)
    assert code == 0, err
    assert (
        f"  escalation {name}\n    round 1 step 1 at " in out
        and f": {ada}\n    acknowledged by {ada} via api at " in out
    )
