"""`herald worker`, `herald api` and `herald dev` refuse to start with a sender SendGrid refuses, saying which
variable to fix, instead of starting and failing every email with SendGrid's 400."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERALD = str(Path(sys.executable).parent / "herald")


@pytest.mark.parametrize("command", [["worker"], ["api", "--port", "1"], ["dev", "--api-port", "1"]])
def test_a_sender_sendgrid_refuses_stops_the_process_naming_the_variable(command: list[str], tmp_path: Path) -> None:
    """Before, each of them started, and every email then failed at SendGrid (400, from.email)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "SENDGRID_", "SMTP_"))}
    env.update(
        HERALD_HOME=str(tmp_path / "home"),
        SENDGRID_API_KEY="SG.startup-check",
        SENDGRID_API_HOST="http://127.0.0.1:1",
        TEMPORAL_ADDRESS="127.0.0.1:1",
    )
    done = subprocess.run([HERALD, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "HERALD_EMAIL_FROM is unset, and its default herald@localhost" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "home" / "temporal.db").exists(), "nothing started"
