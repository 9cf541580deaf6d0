"""`herald dev --demo` as a person runs it: a subprocess, the demo in the outbox and in Temporal, Ctrl-C, again."""

from __future__ import annotations

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
from temporalio.client import Client, WorkflowExecutionStatus


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
