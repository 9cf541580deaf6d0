"""`make flake`: run the timing-sensitive tests many times and report every failure, by test.

Each round is a fresh pytest session (its own dev server and stack), so a test that passes only in a lucky
order or on an idle machine shows up. Exit 1 if any round failed; the report names each failing test, how
often it failed and the first line of each failure.

    python -m tests.flake --rounds 20 tests/workflows/test_digest.py ...
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path


def run_round(number: int, tests: list[str], folder: Path, workers: int) -> tuple[int, dict[str, str]]:
    """One pytest session; the number of tests it ran and its failures, test id -> first line of the failure."""
    report = folder / f"round-{number}.xml"
    # --tb=native: pytest's own traceback rendering parses the failing test's source, and on CPython 3.11.7 that
    # can end the session in an INTERNALERROR ("AST constructor recursion depth mismatch") that hides the failure.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=native", f"--junitxml={report}"]
    if workers > 1:  # as `make test` runs them: several processes on the same cores
        command += ["-n", str(workers), "--dist", "loadfile"]
    command += tests
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if not report.exists():
        return 0, {f"round {number}": "pytest wrote no report (it crashed before running tests)"}
    ran, failed = 0, {}
    for case in ET.parse(report).iter("testcase"):
        ran += 1
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            name = f"{case.get('classname')}::{case.get('name')}"
            failed[name] = (problem.get("message") or "").splitlines()[0][:200] if problem.get("message") else "?"
    return ran, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="test processes per round (pytest-xdist)")
    parser.add_argument("tests", nargs="+")
    args, extra = parser.parse_known_args()
    args.tests += extra  # pytest options (-k, -x) pass through
    failures: Counter[str] = Counter()
    messages: defaultdict[str, list[str]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="herald-flake-") as tmp:
        for number in range(1, args.rounds + 1):
            started = time.monotonic()
            ran, failed = run_round(number, args.tests, Path(tmp), args.workers)
            for name, message in failed.items():
                failures[name] += 1
                messages[name].append(f"round {number}: {message}")
            print(
                f"round {number}/{args.rounds}: {ran} tests, {len(failed)} failed ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
    if not failures:
        print(f"no failures in {args.rounds} rounds")
        return 0
    print(f"\n{len(failures)} test(s) failed in {args.rounds} rounds:")
    for name, count in failures.most_common():
        print(f"  {count}/{args.rounds}  {name}")
        for line in messages[name]:
            print(f"           {line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
