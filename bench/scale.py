"""Benchmark 4, cost as work grows: worker memory and CPU per notification as notifications and idle digests pile up.

Two sweeps on one embedded stack:
- notifications: run them in segments up to 1k, 5k and 20k in total (medium, push + email, as in benchmark 1);
  after each segment, the worker's RSS and its CPU time per notification within the segment;
- idle digest workflows holding items: start `digest/<user>` workflows (signal-with-start with one item, exactly
  what `enqueue_digest` does) up to 1k, 10k and 50k, each user on a daily digest twelve hours away so they stay
  idle on their timer; at each level the worker's RSS once it is idle again, then a probe batch of notifications
  and its CPU time per notification.
Per-notification cost must stay flat: each sweep reports the least-squares slope of worker CPU per notification
against its size, and the change from its smallest to its largest size.

    python -m bench.scale            # 1k/5k/20k notifications, 1k/10k/50k digests
    python -m bench.scale --quick    # 50/100/200 notifications, 100/200/400 digests
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from rich.progress import Progress
from temporalio.common import WorkflowIDConflictPolicy

from bench.common import RESULTS, save_result
from bench.pipeline import USERS, fully_delivered, notification
from bench.pipeline import prepare as prepare_pipeline_users
from bench.stack import Batch, Stack, console, drive, embedded_stack, measure, progress_bar, run_main, settle
from herald.adapters.store import Store, schema
from herald.models import DigestCadence, DigestItem, DigestSettings, DigestStart, Preferences, Priority, utcnow

IN_FLIGHT = 200
FULL_NOTIFICATIONS = [1000, 5000, 20000]
FULL_DIGESTS = [1000, 10000, 50000]
# Starting digests outruns the worker (each one's first tasks queue up behind the others); the probe waits until
# the worker has worked through them, or this long, so it measures notifications, not the backlog.
DIGEST_SETTLE_SECONDS = 3600
FLAT_WITHIN = 0.2  # worker CPU per notification may differ by this fraction between the smallest and largest size


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs (0 for fewer than two distinct points)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if n < 2 or spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def flatness(sizes: list[int], per_notification_ms: list[float]) -> dict[str, Any]:
    """Slope in ms of worker CPU per notification per 1,000 of the size, and the change smallest -> largest."""
    change = per_notification_ms[-1] / per_notification_ms[0] - 1
    return {
        "slope_ms_per_1k": round(slope([s / 1000 for s in sizes], per_notification_ms), 4),
        "change_smallest_to_largest": round(change, 3),
        "flat": abs(change) <= FLAT_WITHIN,
    }


def mb(value: int) -> float:
    return round(value / 2**20, 1)


async def notify_batch(stack: Stack, count: int, run: str, progress: Progress, label: str, offset: int) -> Batch:
    herald = stack.herald

    async def one(index: int) -> bool:
        handle = await herald.notify(notification(run, index))
        return fully_delivered(await handle.outcome())

    batch, delivered = await measure(
        stack, count, one, in_flight=IN_FLIGHT, progress=progress, label=label, offset=offset
    )
    if not all(delivered):
        console.print(f"[yellow]{label}: {count - sum(delivered)} of {count} not delivered on both channels")
    return batch


async def notification_sweep(stack: Stack, sizes: list[int], progress: Progress, run: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    done = 0
    for size in sizes:
        batch = await notify_batch(stack, size - done, run, progress, f"notifications {done}-{size}", offset=done)
        done = size
        usage = stack.usage()
        rows.append(
            {
                "notifications": size,
                "segment": batch.summary(),
                "worker_cpu_ms_per_notification": round(1000 * batch.worker_cpu / batch.count, 3),
                "server_cpu_ms_per_notification": round(1000 * batch.server_cpu / batch.count, 3),
                "worker_rss_mb": mb(usage.worker_rss),
                "server_rss_mb": mb(usage.server_rss),
            }
        )
    per = [float(row["worker_cpu_ms_per_notification"]) for row in rows]
    return {"levels": rows, **flatness(sizes, per)}


async def add_digest_users(store: Store, first: int, last: int, hour: int) -> None:
    """Daily digests at `hour` UTC, written in bulk: one `put_preferences` per user would take minutes at 50k."""
    data = Preferences(digest=DigestSettings(cadence=DigestCadence.daily, hour=hour)).model_dump(
        mode="json", exclude_none=True
    )
    now = utcnow()
    for start in range(first, last, 5000):
        rows = [
            {"user_id": f"digest-user-{i}", "data": data, "updated_at": now}
            for i in range(start, min(last, start + 5000))
        ]
        async with store.engine.begin() as conn:
            await conn.execute(sa.insert(schema.preferences), rows)


async def digest_sweep(stack: Stack, levels: list[int], probe: int, progress: Progress, run: str) -> dict[str, Any]:
    policy = stack.settings.delivery_policy()
    # Twelve hours away, so no digest falls due during the run.
    hour = (utcnow() + timedelta(hours=12)).hour

    async def start_digest(index: int) -> None:
        user = f"digest-user-{index}"
        item = DigestItem(
            notification_id=f"n-{run}-digest-{index}",
            agent_id="bench-agent",
            title=f"Weekly report {index} is ready",
            body="A low-priority item waiting for the daily digest.",
            priority=Priority.low,
            created_at=utcnow(),
        )
        await stack.client.start_workflow(
            "DigestWorkflow",
            DigestStart(user_id=user, policy=policy),
            id=f"digest/{user}",
            task_queue=stack.settings.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="add",
            start_signal_args=[item],
        )

    rows: list[dict[str, Any]] = []
    started = 0
    probes_done = 0
    for level in levels:
        await add_digest_users(stack.store, started, level, hour)
        before = stack.usage()
        await drive(
            level - started,
            start_digest,
            in_flight=IN_FLIGHT,
            progress=progress,
            label=f"digests {started}-{level}",
            offset=started,
        )
        started_in = stack.usage().at - before.at
        waited = await settle(stack, timeout=DIGEST_SETTLE_SECONDS)
        idle = stack.usage()
        count = level - started
        started = level
        batch = await notify_batch(
            stack, probe, f"{run}d{level}", progress, f"probe at {level} digests", offset=probes_done
        )
        probes_done += probe
        after = stack.usage()
        rows.append(
            {
                "digests": level,
                "digest_starts_per_second": round(count / started_in, 2),
                "settled_after_seconds": round(waited, 1),
                "settled": waited < DIGEST_SETTLE_SECONDS,
                "worker_cpu_ms_per_digest": round(1000 * (idle.worker_cpu - before.worker_cpu) / count, 3),
                "worker_rss_mb_idle": mb(idle.worker_rss),
                "server_rss_mb_idle": mb(idle.server_rss),
                "probe": batch.summary(),
                "worker_cpu_ms_per_notification": round(1000 * batch.worker_cpu / batch.count, 3),
                "worker_rss_mb_after_probe": mb(after.worker_rss),
            }
        )
    per = [float(row["worker_cpu_ms_per_notification"]) for row in rows]
    return {"levels": rows, "probe_notifications": probe, **flatness(levels, per)}


async def run(
    notifications: list[int],
    digests: list[int],
    probe: int,
    checkpoint: Callable[[dict[str, Any]], None],
    earlier_notifications: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Both sweeps on one stack; `checkpoint` gets the result so far after the first, so a long run that dies
    in the second still leaves the first on disk. `earlier_notifications`: a finished notification sweep to
    keep instead of running it again (`--keep-notifications`)."""
    async with embedded_stack(ack_users=USERS, prepare=prepare_pipeline_users) as stack:
        run_id = uuid.uuid4().hex[:8]
        with progress_bar() as progress:
            await notify_batch(stack, 50, f"{run_id}w", progress, "warm-up", offset=0)
            await settle(stack)
            start = stack.usage()
            if earlier_notifications is not None:
                by_notifications = earlier_notifications
            else:
                by_notifications = (
                    await notification_sweep(stack, notifications, progress, run_id) if notifications else {}
                )

            def result(by_digests: dict[str, Any]) -> dict[str, Any]:
                return {
                    "worker_rss_mb_at_start": mb(start.worker_rss),
                    "worker_rss_mb_at_end": mb(stack.usage().worker_rss),
                    "notifications": by_notifications,
                    "idle_digests": by_digests,
                    "flat": bool(by_notifications.get("flat", True) and by_digests.get("flat", True)),
                }

            checkpoint({**result({}), "partial": "the idle-digest sweep had not run yet"})
            await settle(stack)
            by_digests = await digest_sweep(stack, digests, probe, progress, run_id) if digests else {}
            return result(by_digests)


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--notifications", type=sizes, help="cumulative notification counts (default 1000,5000,20000)")
    parser.add_argument("--digests", type=sizes, help="idle digest workflow counts (default 1000,10000,50000)")
    parser.add_argument("--probe", type=int, help="notifications run at each digest level (default 500)")
    parser.add_argument(
        "--keep-notifications",
        action="store_true",
        help="keep the notification sweep of the saved result and run only the digest sweep",
    )
    parser.add_argument("--save-as", help="save under bench/results/<name>.json, e.g. scale-exp-something")
    args = parser.parse_args()
    notifications = (
        args.notifications
        if args.notifications is not None
        else ([50, 100, 200] if args.quick else [1000, 5000, 20000])
    )
    digests = args.digests if args.digests is not None else ([100, 200, 400] if args.quick else FULL_DIGESTS)
    probe = args.probe or (50 if args.quick else 500)

    async def go() -> None:
        notes = [
            f"notifications: cumulative {notifications} (medium, push + email, 10 users, {IN_FLIGHT} in flight); "
            "CPU per notification is the worker process's CPU time over each segment",
            f"idle digests: {digests} DigestWorkflows started by signal-with-start with one item each (what "
            f"enqueue_digest does), daily digest 12 h away; at each level a probe of {probe} notifications",
            f"flat: worker CPU per notification within {FLAT_WITHIN:.0%} from the smallest to the largest size; "
            "slope in ms per notification per 1,000 more notifications or digests",
            "stack: temporal dev server (--db-filename SQLite) + one worker in a subprocess (its own pid for RSS "
            "and CPU); the SDK's default cache of 1,000 workflows",
        ]
        if args.quick:
            notes.append("--quick: a smoke run, not the benchmark's size")
        elif notifications != FULL_NOTIFICATIONS or digests != FULL_DIGESTS:
            notes.append(
                f"sizes reduced from the full {FULL_NOTIFICATIONS} notifications and {FULL_DIGESTS} digests: "
                "at this machine's rate each full size takes well over 10 minutes"
            )
        default_name = "scale-quick" if args.quick else "scale"  # a smoke run never replaces the real result
        name = args.save_as or default_name
        earlier = None
        if args.keep_notifications:
            saved = json.loads((RESULTS / f"{default_name}.json").read_text())
            earlier = saved["metrics"]["notifications"]
            notes.append(
                f"notification sweep kept from the run of {saved['when']} at commit {saved['commit']} "
                "(--keep-notifications); the digest sweep ran again"
            )
        targets = {"worker_cpu_per_notification": f"flat: within {FLAT_WITHIN:.0%} across sizes"}

        def checkpoint(partial: dict[str, Any]) -> None:
            save_result(name, partial, targets=targets, notes=notes)

        metrics = await run(notifications, digests, probe, checkpoint, earlier)
        path = save_result(name, metrics, targets=targets, notes=notes)
        console.print(metrics)
        console.print(f"saved {path}")

    run_main(go())


if __name__ == "__main__":
    main()
