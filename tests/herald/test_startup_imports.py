"""What a Herald process loads at start: each module here costs every process (API, workers, CLI) its import."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(statement: str, *modules: str) -> list[str]:
    """Which of `modules` a fresh interpreter has loaded after running `statement`."""
    probe = f"import sys; {statement}; print(' '.join(m for m in {list(modules)!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_rule_conditions_compile_without_loading_cels_command_line() -> None:
    statement = "from herald.domain.conditions import compile_condition"
    assert loaded_after(statement, "cel", "prompt_toolkit", "pygments") == ["cel"]
