"""Benchmark 3, ingestion: what 100 trigger rules cost an event that matches none of them.

Over HTTP: the real app under uvicorn on a loopback port (auth off, a SQLite store with 100 rules), in a process
of its own, takes non-matching events on `POST /v1/events` and, on the same server, a no-op endpoint that this
benchmark adds to the app instance (`POST /bench/noop`: it answers 202 with a constant body and parses nothing).
One httpx.AsyncClient at one concurrency drives both, interleaved in rounds (the order alternates), so the
machine's noise hits both; the figure is the ratio of the two rates. The server's CPU time per request is
measured too (psutil), since a client on the same two cores can be the bottleneck and flatten the ratio.

In process: `HeraldClient.emit` with the same 100 rules, in rule evaluations per second, beside the bare
`RuleBook.matching` loop it wraps (what validation and the cache cost on top of CEL).

    python -m bench.ingest [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import ROOT, save_result
from herald.adapters.store import Store
from herald.domain.rules import RuleBook
from herald.models import TriggerRule
from herald.services.rule_cache import RuleCache
from herald_cli.dev import stop_process

RULE_COUNT = 100
AGENT_ID = "bench-agent"
NOOP_PATH = "/bench/noop"
EVENTS_PATH = "/v1/events"
# What a healthy agent reports every few seconds: every rule reads some of these, none fires.
METRICS: dict[str, bool | int | float | str] = {
    "error_rate": 0.01,
    "latency_ms": 120.0,
    "queue_depth": 3,
    "healthy": True,
    "region": "eu-west",
}
TARGET_HTTP_RATIO = 0.8
# httpx's pool costs more per request as connections grow: at 16 the client, not the server, set the pace here.
CONCURRENCY = 4


def bench_rules(count: int = RULE_COUNT) -> list[TriggerRule]:
    """`count` rules for every agent over the metrics above, four shapes of condition, none of them true.

    Every rule needs only metrics the event has, so each one runs its CEL program (none is skipped unread).
    """
    shapes = (
        "error_rate > {a}",
        "latency_ms > {b} && queue_depth > {i}",
        "!healthy && region == 'r{i}'",
        "queue_depth >= {c} || error_rate >= 0.9",
    )
    return [
        TriggerRule(
            name=f"bench-rule-{i:03d}",
            condition=shapes[i % len(shapes)].format(i=i, a=0.5 + i / 1000, b=5000 + i, c=100 + i),
            user_ids=["bench-user"],
            cooldown_seconds=0,
        )
        for i in range(count)
    ]


def check_none_match(rules: list[TriggerRule]) -> None:
    """The benchmark measures the non-matching path: refuse to run if any rule would fire."""
    fired = RuleBook(rules).matching(AGENT_ID, METRICS)
    if fired:
        raise RuntimeError(f"{len(fired)} benchmark rule(s) match the benchmark event, e.g. {fired[0].name}")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


# --- the server (a subprocess: `python -m bench.ingest --serve PORT HOME`) ------------------------------


def serve(port: int, home: Path) -> None:
    """The real app, auth off, its store under `home`, plus the no-op route added to this instance only."""
    import uvicorn
    from fastapi import Response

    from herald.api.app import create_app
    from herald.config import Settings
    from starter import HeraldClient

    settings = Settings(
        home=home,
        database_url=f"sqlite+aiosqlite:///{home / 'herald.db'}",
        auth=False,
        redis_url=None,
    )
    app = create_app(settings, connect=HeraldClient.connect)
    noop_body = b'{"event_id":"noop","fired":[],"cooled_down":[]}'

    async def noop() -> Response:
        """Same server, middleware and client as /v1/events; no parsing, no rules."""
        return Response(noop_body, status_code=202, media_type="application/json")

    app.add_api_route(NOOP_PATH, noop, methods=["POST"], status_code=202, include_in_schema=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_up(client: httpx.AsyncClient, process: asyncio.subprocess.Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.returncode is not None:
            raise RuntimeError(f"the benchmark server exited ({process.returncode})")
        try:
            response = await client.post(EVENTS_PATH, json={"agent_id": AGENT_ID, "metrics": METRICS})
            if response.status_code == 202:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the benchmark server did not answer within {timeout:.0f}s")
        await asyncio.sleep(0.2)


# --- the HTTP comparison ----------------------------------------------------------------------------


@dataclass
class Round:
    path: str
    requests: int
    seconds: float
    server_cpu_seconds: float
    client_cpu_seconds: float
    failures: int

    @property
    def rate(self) -> float:
        return ratio(self.requests, self.seconds)

    @property
    def cpu_ms_per_request(self) -> float:
        return ratio(self.server_cpu_seconds * 1000, self.requests)


async def drive(
    client: httpx.AsyncClient, server: psutil.Process, path: str, requests: int, concurrency: int, body: bytes
) -> Round:
    """`requests` POSTs of `body` to `path` from `concurrency` tasks on one client; time and server CPU."""
    remaining = requests
    failures = 0
    headers = {"content-type": "application/json"}

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            response = await client.post(path, content=body, headers=headers)
            if response.status_code != 202 or b'"fired":[]' not in response.content:
                failures += 1

    cpu_before = server.cpu_times()
    client_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_before
    cpu_after = server.cpu_times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    return Round(path, requests, seconds, cpu, client_cpu, failures)


async def http_comparison(home: Path, *, rounds: int, requests: int, concurrency: int) -> dict[str, Any]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.ingest", "--serve", str(port), str(home)),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
            await wait_until_up(client, process)
            server = psutil.Process(process.pid)
            body = httpx.Request("POST", "/", json={"agent_id": AGENT_ID, "metrics": METRICS}).content
            # Warm both paths (connections, the rule cache, FastAPI's first-call work) before counting.
            for path in (EVENTS_PATH, NOOP_PATH):
                await drive(client, server, path, max(200, requests // 5), concurrency, body)
            results: dict[str, list[Round]] = {EVENTS_PATH: [], NOOP_PATH: []}
            for index in range(rounds):
                order = (EVENTS_PATH, NOOP_PATH) if index % 2 == 0 else (NOOP_PATH, EVENTS_PATH)
                for path in order:
                    outcome = await drive(client, server, path, requests, concurrency, body)
                    results[path].append(outcome)
                    print(
                        f"  round {index + 1}/{rounds} {path:12} {outcome.rate:8.0f} req/s  "
                        f"server {outcome.cpu_ms_per_request:.3f} ms CPU/req, "
                        f"client {ratio(outcome.client_cpu_seconds * 1000, outcome.requests):.3f}",
                        flush=True,
                    )
    finally:
        await stop_process(process, 15)
    events, noop = results[EVENTS_PATH], results[NOOP_PATH]
    per_round = [ratio(e.rate, n.rate) for e, n in zip(events, noop, strict=True)]
    events_rate = ratio(sum(r.requests for r in events), sum(r.seconds for r in events))
    noop_rate = ratio(sum(r.requests for r in noop), sum(r.seconds for r in noop))
    events_cpu = ratio(sum(r.server_cpu_seconds for r in events) * 1000, sum(r.requests for r in events))
    noop_cpu = ratio(sum(r.server_cpu_seconds for r in noop) * 1000, sum(r.requests for r in noop))
    every = [*events, *noop]
    client_cpu = ratio(sum(r.client_cpu_seconds for r in every) * 1000, sum(r.requests for r in every))
    return {
        "http_events_per_second": round(events_rate, 1),
        "http_noop_per_second": round(noop_rate, 1),
        "http_ratio": round(ratio(events_rate, noop_rate), 3),
        "http_ratio_per_round": [round(r, 3) for r in per_round],
        "http_ratio_median": round(statistics.median(per_round), 3),
        "server_cpu_ms_per_event": round(events_cpu, 3),
        "server_cpu_ms_per_noop": round(noop_cpu, 3),
        "server_cpu_ratio": round(ratio(noop_cpu, events_cpu), 3),
        "client_cpu_ms_per_request": round(client_cpu, 3),
        "http_failures": sum(r.failures for r in events) + sum(r.failures for r in noop),
        "http_rounds": rounds,
        "http_requests_per_round": requests,
        "http_concurrency": concurrency,
    }


# --- in process: HeraldClient.emit ------------------------------------------------------------------


async def emit_comparison(database_url: str, *, rounds: int, events: int) -> dict[str, Any]:
    """`emit` and the bare `RuleBook.matching` it wraps, interleaved in rounds like the HTTP comparison."""
    from temporalio.client import Client

    from starter.client import HeraldClient

    store = await Store.open(database_url)
    try:
        cache = RuleCache(store)
        # Nothing matches, so emit never reaches Temporal: a lazy client that never connects is enough.
        temporal = await Client.connect("127.0.0.1:1", lazy=True)
        herald = HeraldClient(temporal, "bench", rules=cache)
        book = await cache.book()
        if len(book) != RULE_COUNT:
            raise RuntimeError(f"expected {RULE_COUNT} compiled rules, found {len(book)}")

        async def run_emit() -> float:
            started = time.perf_counter()
            for _ in range(events):
                result = await herald.emit(AGENT_ID, METRICS)
                if result.fired:
                    raise RuntimeError("a benchmark rule fired")
            return time.perf_counter() - started

        def run_matching() -> float:
            started = time.perf_counter()
            for _ in range(events):
                if book.matching(AGENT_ID, METRICS):
                    raise RuntimeError("a benchmark rule fired")
            return time.perf_counter() - started

        await run_emit()  # warm
        emit_seconds: list[float] = []
        matching_seconds: list[float] = []
        for index in range(rounds):
            if index % 2 == 0:
                emit_seconds.append(await run_emit())
                matching_seconds.append(run_matching())
            else:
                matching_seconds.append(run_matching())
                emit_seconds.append(await run_emit())
    finally:
        await store.close()
    evaluations = events * RULE_COUNT
    emit_rate = ratio(evaluations * rounds, sum(emit_seconds))
    matching_rate = ratio(evaluations * rounds, sum(matching_seconds))
    return {
        "emit_evaluations_per_second": round(emit_rate),
        "emit_events_per_second": round(emit_rate / RULE_COUNT, 1),
        "matching_evaluations_per_second": round(matching_rate),
        "emit_to_matching_ratio": round(ratio(emit_rate, matching_rate), 3),
        "emit_rounds": rounds,
        "emit_events_per_round": events,
    }


async def run(quick: bool) -> dict[str, Any]:
    load_at_start = round(os.getloadavg()[0], 2)
    home = Path(tempfile.mkdtemp(prefix="herald-bench-ingest-"))
    try:
        database_url = f"sqlite+aiosqlite:///{home / 'herald.db'}"
        rules = bench_rules()
        check_none_match(rules)
        store = await Store.open(database_url)
        try:
            for rule in rules:
                await store.rules.put_rule(rule)
        finally:
            await store.close()
        print(f"ingest: {len(rules)} rules, none matching; in process (HeraldClient.emit)", flush=True)
        emitted = await emit_comparison(database_url, rounds=3 if quick else 6, events=500 if quick else 2000)
        print(
            f"  emit {emitted['emit_evaluations_per_second']:,} rule evaluations/s "
            f"({emitted['emit_to_matching_ratio']} of bare matching)",
            flush=True,
        )
        print("ingest: over HTTP (POST /v1/events vs a no-op route, same server and client)", flush=True)
        served = await http_comparison(
            home, rounds=4 if quick else 10, requests=500 if quick else 2000, concurrency=CONCURRENCY
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load = [load_at_start, round(os.getloadavg()[0], 2)]
    return {"rules": RULE_COUNT, "quick": quick, **served, **emitted, "load_average": load}


def notes_for(metrics: dict[str, Any]) -> list[str]:
    def verdict(value: float) -> str:
        return "met" if value >= TARGET_HTTP_RATIO else "not met"

    return [
        f"HTTP: {metrics['http_events_per_second']:.0f} non-matching events/s against "
        f"{metrics['http_noop_per_second']:.0f} no-op requests/s on the same server, ratio {metrics['http_ratio']} "
        f"(median of the rounds {metrics['http_ratio_median']}): the target of {TARGET_HTTP_RATIO} is "
        f"{verdict(metrics['http_ratio'])}.",
        f"Server CPU per request: {metrics['server_cpu_ms_per_event']} ms for an event, "
        f"{metrics['server_cpu_ms_per_noop']} ms for the no-op, ratio {metrics['server_cpu_ratio']} "
        f"({verdict(metrics['server_cpu_ratio'])}): what the rate ratio tends to once the server, not the client, "
        f"sets the pace. The client spent {metrics['client_cpu_ms_per_request']} ms of CPU per request on the other "
        "core: where that exceeds the server's, the client sets the pace and the rate ratio flatters the server.",
        "Setup: uvicorn (h11, asyncio loop, access log off, Herald's logging left unconfigured) serving "
        "create_app() with auth off and a SQLite store holding 100 rules for every agent, in a subprocess; the "
        f"no-op is `POST {NOOP_PATH}` added with app.add_api_route, answering 202 with a constant body without "
        "parsing it; both go through the same middleware (request log, metrics; the 64 KB body limit is "
        f"on /v1/events only). One httpx.AsyncClient, concurrency {metrics['http_concurrency']} (httpx's pool costs "
        "more per request as connections grow: at 16 the client alone set the pace), "
        f"{metrics['http_rounds']} rounds of {metrics['http_requests_per_round']} requests per endpoint, "
        "order alternating, after a warm-up of each; every event answered 202 with nothing fired "
        f"({metrics['http_failures']} failures).",
        f"In process: HeraldClient.emit evaluated {metrics['emit_evaluations_per_second']:,} rules/s "
        f"({metrics['emit_events_per_second']:,} events/s with 100 rules each), "
        f"{metrics['emit_to_matching_ratio']} of the bare RuleBook.matching loop "
        f"({metrics['matching_evaluations_per_second']:,}/s), rounds interleaved; each rule's condition runs "
        "(every metric it reads is present). The HeraldClient has a lazy Temporal client that never connects: "
        "nothing matches.",
        f"Load average (1 min) at the start and end: {metrics['load_average'][0]} and "
        f"{metrics['load_average'][1]} on {os.cpu_count()} cores (a shared machine: the rounds alternate so that "
        "other work hits both endpoints alike).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), Path(args.serve[1]))
        return
    metrics = asyncio.run(run(args.quick))
    notes = notes_for(metrics)
    if args.quick:
        notes.append("--quick: a smoke run, not the benchmark's size")
    # A smoke run never replaces the real result.
    path = save_result(
        "ingest-quick" if args.quick else "ingest",
        metrics,
        targets={"http_ratio": f">= {TARGET_HTTP_RATIO}", "server_cpu_ratio": f">= {TARGET_HTTP_RATIO}"},
        notes=notes,
    )
    print(f"ingest: ratio {metrics['http_ratio']} (target >= {TARGET_HTTP_RATIO}); wrote {path}", flush=True)


if __name__ == "__main__":
    main()
