"""What a Herald process loads at start: each module here costs every process (API, workers, CLI) its import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import migrated_sqlite


def loaded_after(code: str, *modules: str) -> list[str]:
    """Which of `modules` a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {list(modules)!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_rule_conditions_compile_without_loading_cels_command_line() -> None:
    code = "from herald.domain.conditions import compile_condition"
    assert loaded_after(code, "cel", "prompt_toolkit", "pygments") == ["cel"]


def test_opening_a_store_at_the_head_loads_no_alembic(tmp_path: Path) -> None:
    code = f"""
import asyncio
from herald.adapters.store import Store

async def main() -> None:
    store = await Store.open({migrated_sqlite(tmp_path)!r})
    await store.close()

asyncio.run(main())
"""
    assert loaded_after(code, "sqlalchemy", "alembic", "mako", "pygments") == ["sqlalchemy"]
