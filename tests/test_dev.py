"""`herald dev --demo` as a person runs it: a subprocess, the demo in the outbox and in Temporal, Ctrl-C, again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from temporalio.client import Client, WorkflowExecutionStatus

from herald.adapters.codec import CodecKey, CodecMismatch
from herald.adapters.store import Store
from herald.config import Settings
from herald.models import AgentNotification, ChannelName, Contact, NotificationStatus
from herald.services.auth import issue_token
from starter import HeraldClient
from tests.starter.cli import HERALD, run_cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_dev(workdir: Path, ports: dict[str, int], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """As `make run` does: no HERALD_HOME, so the data goes to ./.herald in the working directory."""
    herald = Path(sys.executable).parent / "herald"
    args = [str(herald), "dev", "--demo", *extra] + [f"--{k}-port={v}" for k, v in ports.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    return subprocess.Popen(args, env=env, cwd=workdir, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_for_line(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace")
        if text in content:
            return content
        if process.poll() is not None:
            pytest.fail(f"herald dev exited {process.returncode}:\n{content}")
        time.sleep(0.2)
    pytest.fail(f"no {text!r} from herald dev within {timeout}s:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("herald dev did not stop within 30 s of Ctrl-C")


async def test_dev_stack_runs_demo_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    home = tmp_path / ".herald"
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    log = tmp_path / "dev.log"

    process = start_dev(tmp_path, ports, log, "--link")
    try:
        output = wait_for_line(log, "email -> ", process)
        assert f"http://127.0.0.1:{ports['ui']}/namespaces/default/workflows" in output
        inbox = next(line.split()[1] for line in output.splitlines() if line.strip().startswith("inbox "))
        page, _, token = inbox.partition("/#token=")
        assert page == f"http://127.0.0.1:{ports['api']}", inbox
        me = httpx.get(f"{page}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        assert me["user_id"] == "demo-user", "the link logs in as the demo user, whose inbox holds the demo"
        demo_line = next(line for line in output.splitlines() if line.startswith("demo notification"))
        workflow_id = demo_line.split()[2].rstrip(":")
        assert demo_line.endswith("delivered"), demo_line
        notification_id = workflow_id.removeprefix("notification/")
        email = json.loads((home / "outbox" / "email" / f"{notification_id}.json").read_text())
        assert email["message"]["subject"].startswith("[MEDIUM] Herald is running")

        client = await Client.connect(f"127.0.0.1:{ports['temporal']}")
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.status is WorkflowExecutionStatus.COMPLETED
        assert httpx.get(f"http://127.0.0.1:{ports['ui']}/", timeout=10).status_code == 200
        api = httpx.get(f"http://127.0.0.1:{ports['api']}/v1/notifications/{notification_id}", timeout=10)
        assert api.json()["status"] == "delivered"
    finally:
        code = stop(process)
    assert code == 0, log.read_text(errors="replace")
    assert "stopping" in log.read_text()

    second_log = tmp_path / "dev2.log"
    # Fresh ports: the first run's were free only when picked, and other test processes bind ports meanwhile (the UI's
    # was taken once, failing the restart with "address already in use"). The data lives in HERALD_HOME, not a port.
    ports = {name: free_port() for name in ports}
    process = start_dev(tmp_path, ports, second_log)
    try:
        again = wait_for_line(second_log, "email -> ", process)
        assert "delivered" in again, "a second run's demo is a new notification, not a duplicate"
        assert "#token=" not in again, "no login link unless asked for or on a terminal: it holds a token"
        client = await Client.connect(f"127.0.0.1:{ports['temporal']}")
        earlier = await client.get_workflow_handle(workflow_id).describe()
        assert earlier.status is WorkflowExecutionStatus.COMPLETED, "the first run's workflow survived the restart"
    finally:
        assert stop(process) == 0
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", ports["temporal"])) != 0, "the Temporal dev server was stopped too"


def agent_env(**values: str) -> dict[str, str]:
    """An agent's shell beside `herald dev`: none of Herald's or Temporal's settings but `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEMPORAL_"))}
    return env | values


async def test_agents_beside_dev_read_outcomes_with_only_home_and_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent beside `herald dev` with HERALD_HOME and TEMPORAL_ADDRESS only: `HeraldClient.connect()`, `herald
    notify --wait`, `herald status` and `herald mcp`'s ask_user / notification_status read what dev's worker
    encrypted; a process with another key, or none, is stopped at connect by a message that says what to set.

    It used to die in `outcome()` with `KeyError: 'Unknown payload encoding binary/encrypted'` (and ask_user
    with a bare "Error executing tool ask_user"): only `herald dev` loaded HERALD_HOME/codec.key."""
    home = tmp_path / ".herald"
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    log = tmp_path / "dev.log"
    address = f"127.0.0.1:{ports['temporal']}"
    beside = {"HERALD_HOME": str(home), "TEMPORAL_ADDRESS": address}
    for name in [k for k in os.environ if k.startswith(("HERALD_", "TEMPORAL_"))]:
        monkeypatch.delenv(name)
    for name, value in beside.items():
        monkeypatch.setenv(name, value)

    process = start_dev(tmp_path, ports, log)
    try:
        wait_for_line(log, "email -> ", process)
        assert (home / "codec.key").exists()
        store = await Store.open(Settings().resolved_database_url)  # dev's own SQLite store, as the CLI opens it
        try:
            await store.users.put_contact("ada", Contact(email="ada@example.com"))
            agent_key = await issue_token(store, "agent", "deploy-bot")
        finally:
            await store.close()

        # The README's first example, as written.
        herald = await HeraldClient.connect()
        handle = await herald.notify(
            AgentNotification(agent_id="support-agent", user_id="ada", title="Deploy finished", channels=["email"])
        )
        outcome = await asyncio.wait_for(handle.outcome(), 60)
        assert outcome.status is NotificationStatus.delivered and outcome.user_id == "ada"
        assert outcome.channels[ChannelName.email].status == "delivered"

        code, out, err = await run_cli(
            agent_env(**beside), "notify", "--agent", "cli-agent", "--user", "ada", "--title", "t", "--channel",
            "email", "--wait",
        )  # fmt: skip
        assert code == 0, err
        sent = json.loads(out)
        assert sent["outcome"]["status"] == "delivered", out
        code, out, err = await run_cli(agent_env(**beside), "status", sent["notification_id"])
        assert code == 0, err
        assert out.startswith(f"notification/{sent['notification_id']}: delivered"), out

        # `herald mcp` as the README starts it: the key, and HERALD_HOME / TEMPORAL_ADDRESS.
        params = StdioServerParameters(
            command=HERALD, args=["mcp"], env=agent_env(HERALD_AGENT_KEY=agent_key, **beside)
        )
        arguments = {
            "user_id": "ada",
            "question": "Deploy the fix?",
            "actions": [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}],
            "timeout_seconds": 600,
            "channels": ["email"],
            "notification_id": "ask-beside-dev",
        }
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            asking = asyncio.create_task(session.call_tool("ask_user", arguments))
            question = herald.get_handle("ask-beside-dev")
            for _ in range(300):  # until the question reached ada: then her answer is taken
                assert not asking.done(), asking.result()
                try:
                    live = await question.status()
                    if live.channels.get(ChannelName.email) and live.channels[ChannelName.email].status == "delivered":
                        break
                except Exception:  # not started yet
                    pass
                await asyncio.sleep(0.2)
            await herald.respond("ask-beside-dev", "approve", "ada", "email")
            result = await asyncio.wait_for(asking, 60)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            assert result.structured_content["status"] == "answered"
            assert result.structured_content["answer"]["action_id"] == "approve"
            status = await session.call_tool("notification_status", {"notification_id": "ask-beside-dev"})
            assert not status.is_error, status.content
            assert status.structured_content is not None and status.structured_content["status"] == "answered"

        # Another key: stopped at connect, naming the setting, with what to do; the key's value never shows.
        other = CodecKey("k-other", bytes(range(32))).entry()
        monkeypatch.setenv("HERALD_CODEC_KEYS", other)
        with pytest.raises(CodecMismatch) as caught:
            await HeraldClient.connect()
        message = str(caught.value)
        assert "which HERALD_CODEC_KEYS doesn't hold" in message and "herald-retention schedule" in message
        assert "give this process the workers' keys" in message and other.split(":")[1] not in message
        monkeypatch.delenv("HERALD_CODEC_KEYS")

        # No key at all (HERALD_HOME elsewhere): the same, naming the file it looked for.
        elsewhere = tmp_path / "elsewhere"
        monkeypatch.setenv("HERALD_HOME", str(elsewhere))
        with pytest.raises(CodecMismatch) as caught:
            await HeraldClient.connect()
        assert f"neither HERALD_CODEC_KEYS is set nor {elsewhere / 'codec.key'} exists" in str(caught.value)
        lost = agent_env(HERALD_HOME=str(elsewhere), TEMPORAL_ADDRESS=address)
        code, out, err = await run_cli(lost, "status", sent["notification_id"])
        assert code == 2 and "error: payload encrypted with key" in err and "Traceback" not in err, err
        code, out, err = await run_cli(agent_env(HERALD_AGENT_KEY=agent_key, HERALD_CODEC_KEYS=other, **beside), "mcp")
        assert code == 2 and out == "" and "Traceback" not in err, err
        assert "error: payload encrypted with key" in err and "which HERALD_CODEC_KEYS doesn't hold" in err, err
    finally:
        assert stop(process) == 0, log.read_text(errors="replace")
