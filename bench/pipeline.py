"""Benchmark 1, pipeline efficiency: how close a whole notification comes to the cost of an empty workflow.

N medium notifications, each deduplicated, preference-merged and delivered on push (the in-process hub, with an
acking client connected for every user) and email (the outbox), started with `HeraldClient.notify` and waited for
to the end; completed notifications per second, divided by the rate of N empty workflows on the same server and
worker in the same run. The empty rate is measured before and after the notifications, and their mean is the
divisor, so drift during the run shows and is averaged out. Target: at least 0.6.

`--profile` then runs one more batch of notifications (not measured) with py-spy sampling the worker process and
writes bench/results/pipeline-profile.txt.

    python -m bench.pipeline            # 1,000 of each
    python -m bench.pipeline --quick    # 100 of each, a smoke run
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from bench.common import RESULTS, save_result
from bench.stack import (
    Batch,
    Stack,
    console,
    embedded_stack,
    empty_workflow,
    measure,
    progress_bar,
    py_spy,
    run_main,
    settle,
    summarize_profile,
    write_text,
)
from herald.adapters.store import Store
from herald.models import (
    AgentNotification,
    ChannelName,
    ChannelStatus,
    ChannelSwitches,
    Contact,
    NotificationOutcome,
    NotificationStatus,
    Preferences,
    Priority,
)

AGENT = "bench-agent"
USERS = [f"bench-user-{i}" for i in range(10)]
TARGET_RATIO = 0.6
BODY = (
    "The nightly build of the payments service finished. 1,284 tests passed, 3 were skipped; the coverage report "
    "and the deployment preview are attached. Review the two flaky tests flagged by the agent before merging."
)


async def prepare(store: Store) -> None:
    """Each user has an email address and preferences with an agent entry to merge over the default."""
    for user in USERS:
        await store.users.put_contact(user, Contact(email=f"{user}@example.com"))
        await store.users.put_preferences(
            user,
            Preferences(
                default=ChannelSwitches(push=True, email=True, sms=False),
                agents={AGENT: ChannelSwitches(email=True, min_priority=Priority.low)},
            ),
        )


def notification(run: str, index: int) -> AgentNotification:
    """Distinct titles: every notification passes the dedup check as new."""
    return AgentNotification(
        agent_id=AGENT,
        user_id=USERS[index % len(USERS)],
        title=f"Nightly build {run}-{index} finished",
        body=BODY,
        priority=Priority.medium,
        channels=[ChannelName.push, ChannelName.email],
    )


def fully_delivered(outcome: NotificationOutcome) -> bool:
    channels = outcome.channels
    return outcome.status is NotificationStatus.delivered and all(
        channels.get(c) is not None and channels[c].status is ChannelStatus.delivered
        for c in (ChannelName.push, ChannelName.email)
    )


def notify_one(stack: Stack, run: str) -> Any:
    herald = stack.herald

    async def one(index: int) -> bool:
        handle = await herald.notify(notification(run, index))
        return fully_delivered(await handle.outcome())

    return one


async def run(
    count: int,
    in_flight: int,
    warmup: int,
    profile: bool,
    worker_options: list[str] | None = None,
    server_args: list[str] | None = None,
) -> dict[str, Any]:
    async with embedded_stack(
        ack_users=USERS, prepare=prepare, worker_options=worker_options or [], server_args=server_args or []
    ) as stack:
        run_id = uuid.uuid4().hex[:8]
        with progress_bar() as progress:
            # The first workflows of each type pay for imports and the sandbox; not counted.
            await measure(
                stack,
                warmup,
                empty_workflow(stack, "warm"),
                in_flight=in_flight,
                progress=progress,
                label="warm-up: empty",
            )
            await measure(
                stack,
                warmup,
                notify_one(stack, f"{run_id}w"),
                in_flight=in_flight,
                progress=progress,
                label="warm-up: notifications",
            )
            await settle(stack)
            empty_before, _ = await measure(
                stack,
                count,
                empty_workflow(stack, "before"),
                in_flight=in_flight,
                progress=progress,
                label="empty workflows (before)",
            )
            await settle(stack)
            pipeline, delivered = await measure(
                stack, count, notify_one(stack, run_id), in_flight=in_flight, progress=progress, label="notifications"
            )
            await settle(stack)
            empty_after, _ = await measure(
                stack,
                count,
                empty_workflow(stack, "after"),
                in_flight=in_flight,
                progress=progress,
                label="empty workflows (after)",
            )
            rss = stack.usage()
            if profile:
                await profile_batches(stack, count, in_flight, run_id, progress)
    empty_rate = (empty_before.rate + empty_after.rate) / 2
    ratio = pipeline.rate / empty_rate
    return {
        "notifications": count,
        "in_flight": in_flight,
        "ratio": round(ratio, 3),
        "meets_target": ratio >= TARGET_RATIO,
        "notifications_per_second": round(pipeline.rate, 2),
        "empty_per_second": round(empty_rate, 2),
        "fully_delivered": sum(delivered),
        "pipeline": pipeline.summary(),
        "empty_before": empty_before.summary(),
        "empty_after": empty_after.summary(),
        "worker_cpu_ratio": round(_per(pipeline, "worker") / _mean_per(empty_before, empty_after, "worker"), 2),
        "server_cpu_ratio": round(_per(pipeline, "server") / _mean_per(empty_before, empty_after, "server"), 2),
        "worker_rss_mb": round(rss.worker_rss / 2**20, 1),
        "server_rss_mb": round(rss.server_rss / 2**20, 1),
    }


async def profile_batches(stack: Stack, count: int, in_flight: int, run_id: str, progress: Any) -> None:
    """A further batch of each kind under py-spy (not measured: sampling slows the worker), one profile each."""
    batches = (
        ("pipeline-profile.txt", "notifications", notify_one(stack, f"{run_id}p")),
        ("pipeline-profile-empty.txt", "empty workflows", empty_workflow(stack, "profiled")),
    )
    for filename, kind, one in batches:
        await settle(stack)
        raw = stack.home / f"{filename}.raw"
        async with py_spy(stack.worker.pid, raw):
            batch, _ = await measure(
                stack, count, one, in_flight=in_flight, progress=progress, label=f"{kind} (profiled)"
            )
        title = (
            f"Worker profile, benchmark 1: {count} {kind}, {batch.rate:.1f}/s under py-spy; worker CPU "
            f"{1000 * batch.worker_cpu / count:.1f} ms each, Temporal server CPU {1000 * batch.server_cpu / count:.1f} ms each"
        )
        text = summarize_profile(raw, title)
        write_text(RESULTS / filename, text)
        console.print(text[:2500])


def _per(batch: Batch, process: str) -> float:
    return (batch.worker_cpu if process == "worker" else batch.server_cpu) / batch.count


def _mean_per(a: Batch, b: Batch, process: str) -> float:
    return (_per(a, process) + _per(b, process)) / 2


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 of each instead of 1,000: a smoke run")
    parser.add_argument("--count", type=int, help="notifications and empty workflows per batch")
    parser.add_argument("--in-flight", type=int, default=200, help="workflows started and awaited at once")
    parser.add_argument("--profile", action="store_true", help="then profile a further batch with py-spy")
    parser.add_argument("--worker-option", action="append", default=[], help="experiment: NAME=JSON for the Worker")
    parser.add_argument("--server-arg", action="append", default=[], help="experiment: a dev server flag")
    parser.add_argument("--save-as", help="experiment: save under this name instead")
    args = parser.parse_args()
    count = args.count or (100 if args.quick else 1000)
    warmup = 20 if args.quick else 50

    async def go() -> None:
        metrics = await run(count, args.in_flight, warmup, args.profile, args.worker_option, args.server_arg)
        notes = [
            f"{count} notifications (medium, push + email, distinct titles, 10 users) and {count} empty workflows "
            f"before and after them, {args.in_flight} in flight; warm-up of {warmup} each not counted",
            "stack: temporal dev server (--db-filename SQLite, search attributes) + one worker in a subprocess; "
            "push to an in-process acking client per user, email to the outbox; payloads encrypted as in herald dev",
            "ratio = notifications/s divided by the mean of the empty rates before and after",
        ]
        if args.quick:
            notes.append("--quick: a smoke run, not the benchmark's size")
        if args.worker_option or args.server_arg:
            notes.append(f"experiment: worker options {args.worker_option}, dev server flags {args.server_arg}")
        if args.profile:
            notes.append(
                "profile: a further batch of each kind under py-spy, in bench/results/pipeline-profile.txt and "
                "pipeline-profile-empty.txt"
            )
        # A smoke run never replaces the real result.
        name = args.save_as or ("pipeline-quick" if args.quick else "pipeline")
        path = save_result(name, metrics, targets={"ratio": f">= {TARGET_RATIO}"}, notes=notes)
        console.print(metrics)
        console.print(f"saved {path}")

    run_main(go())


if __name__ == "__main__":
    main()
