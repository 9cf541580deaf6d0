"""Running the real `herald` command as a subprocess, with a clean environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

HERALD = str(Path(sys.executable).parent / "herald")


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without Herald's, Temporal's or VAPID settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEMPORAL_", "VAPID_"))}
    env.update(values)
    return env


async def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `herald <args>`."""
    process = await asyncio.create_subprocess_exec(
        HERALD, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
