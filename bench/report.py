"""Turn bench/results/*.json into BENCHMARKS.md at the repository root, and the plots beside the results.

A benchmark's full result (`<name>.json`) is reported when there is one; a smoke run (`<name>-quick.json`) only
in its absence, and marked as such. Targets are strings like ">= 0.8" on a metric (dotted paths reach nested
ones); a result may also set no target, and is then reported as measured.

    python -m bench.report
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import RESULTS, ROOT, git_commit, load_results

REPORT = ROOT / "BENCHMARKS.md"
# What a run shows and what holds a target back: written by people after a run, one file per benchmark.
ANALYSES = ROOT / "bench" / "analysis"
LATENCY_PLOT = RESULTS / "latency.png"
THROUGHPUT_PLOT = RESULTS / "throughput.png"


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    # Figures shown in the table without a target: (metric path, what it is).
    figures: tuple[tuple[str, str], ...] = ()


BENCHMARKS = (
    Benchmark("pipeline", "1. Pipeline efficiency", (("notifications_per_second", "notifications/s"),)),
    Benchmark(
        "latency",
        "2. Latency",
        (("latency_ms.p50", "p50 event → WebSocket frame, ms"), ("latency_ms.p99", "p99 event → WebSocket frame, ms")),
    ),
    Benchmark(
        "ingest",
        "3. Ingestion",
        (("emit_evaluations_per_second", "rule evaluations/s through HeraldClient.emit, 100 rules"),),
    ),
    Benchmark(
        "scale",
        "4. Scale",
        (
            ("notifications.change_smallest_to_largest", "worker CPU per notification, change as notifications grow"),
            ("idle_digests.change_smallest_to_largest", "worker CPU per notification, change as idle digests grow"),
            ("worker_rss_mb_at_end", "worker RSS at the end, MB"),
        ),
    ),
    Benchmark(
        "celery",
        "5. The usual alternative (Celery)",
        (
            ("ratio", "throughput Herald/Celery, the same push + email notifications"),
            ("herald_cpu_ms_each", "Herald CPU ms per notification (worker + Temporal server)"),
            ("celery_cpu_ms_each", "Celery CPU ms per notification (worker + Redis)"),
            ("kill_default_timeout.deliveries_missing", "Celery deliveries missing after SIGKILL (default timeout)"),
            ("kill_default_timeout.deliveries_lost_for_good", "of which gone for good (not even unacked)"),
            ("kill_short_timeout.deliveries_missing", "Celery deliveries missing after SIGKILL (10 s timeout)"),
            ("kill_short_timeout.extra_deliveries", "Celery duplicate sends after SIGKILL (10 s timeout)"),
        ),
    ),
)

# What a target's metric means, where the key alone would not say.
DESCRIPTIONS = {
    ("pipeline", "ratio"): "notifications/s ÷ empty workflows/s, same server and worker",
    ("latency", "p50_ratio"): "p50 event → WebSocket frame ÷ p50 empty-workflow round trip",
    ("latency", "p99_ratio"): "p99 event → WebSocket frame ÷ p50 empty-workflow round trip",
    ("scale", "worker_cpu_per_notification"): "worker CPU per notification flat as notifications and digests grow",
    ("ingest", "http_ratio"): "non-matching events/s ÷ no-op requests/s, same server and client",
    ("ingest", "server_cpu_ratio"): "server CPU per no-op ÷ per event (the rate ratio when the server saturates)",
}

BAR_LABELS = {
    ("pipeline", "notifications_per_second"): "pipeline: notifications/s",
    ("pipeline", "empty_per_second"): "pipeline: empty workflows/s",
    ("ingest", "http_events_per_second"): "ingest: HTTP events/s (100 rules)",
    ("ingest", "http_noop_per_second"): "ingest: HTTP no-op requests/s",
    ("ingest", "emit_events_per_second"): "ingest: HeraldClient.emit events/s",
    ("celery", "herald_per_second"): "celery comparison: Herald notifications/s",
    ("celery", "celery_per_second"): "celery comparison: Celery notifications/s",
}

# Rates that are not a scenario's throughput: an offered load, or CEL evaluations rather than events.
NOT_THROUGHPUT = {
    ("latency", "rate_per_second"),
    ("ingest", "emit_evaluations_per_second"),
    ("ingest", "matching_evaluations_per_second"),
}

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
_TARGET = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?[0-9][0-9_.eE+-]*)\s*(\S*)\s*$")


# --- pure helpers ---------------------------------------------------------------------------------------------------


def parse_target(spec: Any) -> tuple[str, float] | None:
    """`">= 0.8"` -> (">=", 0.8); a trailing unit (`"<= 500 ms"`) is allowed; anything else -> None."""
    if isinstance(spec, bool) or not isinstance(spec, str | int | float):
        return None
    if isinstance(spec, int | float):
        return (">=", float(spec))
    match = _TARGET.match(spec)
    if match is None:
        return None
    try:
        return match.group(1), float(match.group(2))
    except ValueError:
        return None


def target_met(value: Any, spec: Any) -> bool | None:
    """Whether `value` meets `spec`; None when either cannot be read."""
    parsed = parse_target(spec)
    if parsed is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _OPERATORS[parsed[0]](float(value), parsed[1])


def lookup(metrics: Mapping[str, Any], path: str) -> Any:
    """`a.b` reaches metrics["a"]["b"]; None when any part is missing."""
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def pick(results: Mapping[str, dict[str, Any]], name: str) -> tuple[dict[str, Any], bool] | None:
    """The full result, else the smoke run's (second item True), else None."""
    if name in results:
        return results[name], False
    if f"{name}-quick" in results:
        return results[f"{name}-quick"], True
    return None


def show(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table_rows(results: Mapping[str, dict[str, Any]]) -> list[list[str]]:
    """One row per target and per listed figure of each benchmark, in the issue's order."""
    rows: list[list[str]] = []
    for bench in BENCHMARKS:
        picked = pick(results, bench.name)
        if picked is None:
            rows.append([bench.title, "not run", "", "", ""])
            continue
        document, quick = picked
        title = bench.title + (" (quick run)" if quick else "")
        metrics = document.get("metrics", {})
        targets = document.get("targets") or {}
        shown = False
        for path, spec in targets.items():
            value = lookup(metrics, path)
            met = target_met(value, spec)
            if met is None:
                # A target in words ("flat: within 20%"): the benchmark's own verdict, if it gave one.
                verdict_of_benchmark = next(
                    (metrics[key] for key in ("meets_target", "flat") if isinstance(metrics.get(key), bool)), None
                )
                if value is None or isinstance(value, Mapping):
                    value = verdict_of_benchmark
                met = verdict_of_benchmark
            label = DESCRIPTIONS.get((bench.name, path), path)
            verdict = "n/a" if met is None else ("**met**" if met else "**not met**")
            rows.append([title, _cell(label), show(value), _cell(str(spec)), verdict])
            shown = True
        for path, label in bench.figures:
            value = lookup(metrics, path)
            if value is None:
                continue
            rows.append([title, _cell(label), show(value), "none: reported", "–"])
            shown = True
        if not shown:
            rows.append([title, "see the notes", "", "", ""])
    return rows


def throughput_bars(results: Mapping[str, dict[str, Any]]) -> list[tuple[str, float]]:
    """Every top-level `*_per_second` metric of each reported benchmark, labelled by benchmark."""
    bars: list[tuple[str, float]] = []
    for bench in BENCHMARKS:
        picked = pick(results, bench.name)
        if picked is None:
            continue
        metrics = picked[0].get("metrics", {})
        for key, value in metrics.items():
            if (bench.name, key) in NOT_THROUGHPUT:
                continue
            if key.endswith("per_second") and isinstance(value, int | float) and not isinstance(value, bool):
                if value > 0:
                    default = f"{bench.name}: {key.removesuffix('_per_second').replace('_', ' ')}/s"
                    bars.append((BAR_LABELS.get((bench.name, key), default), float(value)))
    return bars


def latency_series(document: Mapping[str, Any]) -> dict[str, list[float]]:
    """Latency samples (milliseconds) by series, found in a latency result wherever it keeps them.

    Any list of at least ten numbers under a key that mentions ms, latency or samples counts as a series; dict
    levels on the way name it (`websocket.samples_ms` -> "websocket"). Nothing found: {}.
    """
    found: dict[str, list[float]] = {}

    def walk(value: Any, trail: tuple[str, ...]) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, (*trail, str(key)))
            return
        if not isinstance(value, list) or len(value) < 10 or not trail:
            return
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return
        key = trail[-1].lower()
        if any(word in key for word in ("ms", "latenc", "sample")):
            name = " / ".join(trail[:-1]) or trail[-1]
            found[name] = [float(v) for v in value]

    walk(document.get("metrics", document), ())
    return found


_PERCENTILE_KEY = re.compile(r"^p(\d+(?:\.\d+)?)$")


def latency_percentiles(document: Mapping[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """Percentile summaries (`{"p50": ms, "p99": ms, "min": ms, "max": ms}`) by series, when a latency result keeps
    no samples: every dict of at least two `pNN` numbers, named by its path (min counts as p0, max as p100)."""
    found: dict[str, list[tuple[float, float]]] = {}

    def walk(value: Any, trail: tuple[str, ...]) -> None:
        if not isinstance(value, Mapping):
            return
        points: list[tuple[float, float]] = []
        for key, inner in value.items():
            if isinstance(inner, Mapping):
                walk(inner, (*trail, str(key)))
                continue
            if isinstance(inner, bool) or not isinstance(inner, int | float):
                continue
            match = _PERCENTILE_KEY.match(str(key))
            if match is not None:
                points.append((float(match.group(1)), float(inner)))
            elif key in ("min", "max"):
                points.append((0.0 if key == "min" else 100.0, float(inner)))
        if trail and sum(1 for pct, _ in points if 0 < pct < 100) >= 2:
            found[".".join(trail)] = sorted(points)

    walk(document.get("metrics", document), ())
    return found


def render(
    results: Mapping[str, dict[str, Any]],
    *,
    plots: Mapping[str, str | None],
    commit: str,
    analyses: Mapping[str, str] | None = None,
) -> str:
    """The whole BENCHMARKS.md. `plots` maps a plot's title to its path from the root, or None with why not."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.py`, then `bench/report.py`) from `bench/results/*.json`; edit those "
        "scripts, not this file. This machine is shared and noisy: absolute times drift from run to run, so the "
        "figures that matter are ratios measured side by side in one run.",
        "",
        "| Benchmark | Figure | Measured | Target | Met |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    lines.append("")
    documents = [picked[0] for bench in BENCHMARKS if (picked := pick(results, bench.name)) is not None]
    if documents:
        machine = documents[0].get("machine", {})
        described = ", ".join(f"{key} {value}" for key, value in sorted(machine.items()))
        commits = sorted({str(d.get("commit", "unknown")) for d in documents})
        lines.append(f"Machine: {described}.  ")
        lines.append(f"Commit of the results: {', '.join(commits)} (report written at {commit}).")
        lines.append("")
    lines += ["## Plots", ""]
    for title, path in plots.items():
        if path is None:
            continue
        lines.append(f"- [{title}]({path})")
    skipped = [title for title, path in plots.items() if path is None]
    for title in skipped:
        lines.append(f"- {title}: not drawn (no latency samples or percentiles in `bench/results/` yet)")
    lines.append("")
    for title, path in plots.items():
        if path is not None:
            lines += [f"![{title}]({path})", ""]
    for bench in BENCHMARKS:
        lines.append(f"## {bench.title}")
        lines.append("")
        picked = pick(results, bench.name)
        if picked is None:
            lines += [f"Not run: no `bench/results/{bench.name}.json`.", ""]
            continue
        document, quick = picked
        source = f"{bench.name}-quick.json" if quick else f"{bench.name}.json"
        lines.append(
            f"`bench/results/{source}`, run {document.get('when', '?')} at commit {document.get('commit', '?')}"
            + (" (a quick smoke run: the full run has not been recorded)" if quick else "")
            + "."
        )
        lines.append("")
        lines += [f"- {note}" for note in document.get("notes", [])]
        lines.append("")
        analysis = (analyses or {}).get(bench.name)
        if analysis:
            lines += [f"### What it shows (`bench/analysis/{bench.name}.md`)", "", analysis.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"


# --- plots (matplotlib) ---------------------------------------------------------------------------------------------


def plot_latency(series: Mapping[str, Sequence[float]], path: Path) -> None:
    """Each series' distribution: a histogram on a log time axis, and its CDF with p50/p99 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, samples in series.items():
        ordered = sorted(s for s in samples if s > 0)
        if not ordered:
            continue
        low, high = ordered[0], ordered[-1]
        bins = [low * (high / low) ** (i / 40) for i in range(41)] if high > low else 10
        hist.hist(ordered, bins=bins, alpha=0.55, label=f"{name} (n={len(ordered)})")
        ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
        cdf.plot(ordered, ys, label=name)
        for pct in (50, 99):
            value = ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]
            cdf.axvline(value, linestyle=":", linewidth=0.8, color="grey")
            cdf.annotate(f"p{pct} {value:.0f} ms", (value, pct / 100), fontsize=7, rotation=90, va="top")
    for axis in (hist, cdf):
        axis.set_xscale("log")
        axis.set_xlabel("milliseconds (log)")
        axis.legend(fontsize=7)
    hist.set_ylabel("count")
    hist.set_title("Latency distribution")
    cdf.set_ylabel("fraction at or under")
    cdf.set_title("Cumulative")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_percentiles(series: Mapping[str, Sequence[tuple[float, float]]], path: Path) -> None:
    """Each series' percentiles (what a latency result keeps when it keeps no samples) on a log time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(8, 4.2))
    for name, points in series.items():
        xs = [pct for pct, _ in points]
        ys = [value for _, value in points]
        axis.plot(xs, ys, marker="o", label=name)
        previous: float | None = None
        for pct, value in points:
            if value != previous:  # p95, p99 and max are often the same sample in a short run
                axis.annotate(f"{value:.0f}", (pct, value), xytext=(3, 3), textcoords="offset points", fontsize=7)
            previous = value
    axis.set_yscale("log")
    axis.set_xlabel("percentile (0 = min, 100 = max)")
    axis.set_ylabel("milliseconds (log)")
    axis.set_title("Latency distribution (percentiles)")
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(bars: Sequence[tuple[str, float]], path: Path) -> None:
    """Rates of every scenario on one log axis (they span from a few per second to hundreds of thousands)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.2))
    labels = [label for label, _ in bars]
    values = [value for _, value in bars]
    axis.barh(range(len(bars)), values, color="#4a7ab0")
    axis.set_yticks(range(len(bars)), labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.set_xlabel("per second (log scale)")
    axis.set_title("Throughput per scenario (same machine; compare within a benchmark)")
    for index, value in enumerate(values):
        axis.annotate(show(value), (value, index), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    results = load_results()
    plots: dict[str, str | None] = {}
    latency = pick(results, "latency")
    series = latency_series(latency[0]) if latency else {}
    percentiles = latency_percentiles(latency[0]) if latency else {}
    if series:
        plot_latency(series, LATENCY_PLOT)
    elif percentiles:
        plot_percentiles(percentiles, LATENCY_PLOT)
    plots["Latency distribution"] = LATENCY_PLOT.relative_to(ROOT).as_posix() if series or percentiles else None
    bars = throughput_bars(results)
    if bars:
        plot_throughput(bars, THROUGHPUT_PLOT)
        plots["Throughput per scenario"] = THROUGHPUT_PLOT.relative_to(ROOT).as_posix()
    analyses = {path.stem: path.read_text() for path in sorted(ANALYSES.glob("*.md"))}
    REPORT.write_text(render(results, plots=plots, commit=git_commit(), analyses=analyses))
    print(f"wrote {REPORT.relative_to(ROOT)} from {len(results)} result file(s)")


if __name__ == "__main__":
    main()
