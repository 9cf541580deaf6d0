"""Run the five benchmarks, one process each, then write BENCHMARKS.md (`make bench`).

A benchmark that fails does not stop the others: the report is written from whatever results exist, and the
exit status says something failed.

    python -m bench.run [--quick] [--only ingest,celery_compare]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import ROOT

SCENARIOS = ("pipeline", "latency", "ingest", "scale", "celery_compare")


def command(scenario: str, quick: bool) -> list[str]:
    return [sys.executable, "-m", f"bench.{scenario}", *(["--quick"] if quick else [])]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke runs: small sizes, results saved as *-quick")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    chosen = SCENARIOS if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    failed: list[str] = []
    for scenario in chosen:
        print(f"\n=== bench.{scenario}{' --quick' if args.quick else ''}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command(scenario, args.quick), cwd=ROOT)
        print(f"=== bench.{scenario}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        if code != 0:
            failed.append(scenario)
    print("\n=== bench.report", flush=True)
    if subprocess.call([sys.executable, "-m", "bench.report"], cwd=ROOT) != 0:
        failed.append("report")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
