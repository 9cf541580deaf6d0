"""SubscriptionWorkflow `subscription/<name>`: posts a subscription's events to its subscriber one at a time, in the
order they arrived. Orchestration only; every decision is in herald/domain/subscriptions.py.

Events arrive by signal-with-start (`event`) from the activities that record what happened (record_outcome, the
heartbeat's count of a miss: herald/services/subscriptions.py), so they are kept by Temporal while no worker runs.
Each goes out through post_subscription_event with the webhook channel's retry schedule (fixed at start in the
run's input); the next waits until it is done. An event that still fails after its retries counts one failure in a
row (mark_subscription keeps the count and the last error in the store); `max_failures` in a row disable the
subscription and end the run, with whatever was still pending dropped (a PUT enables it again, and the next event
starts a new run). A success resets the count. A subscription deleted (or disabled) meanwhile ends the run too.
A repeated signal (the same event id, as a retried record_outcome sends) is dropped. It continues as new after
`events_per_run` events, or when Temporal suggests it, carrying what is pending.

The history holds event ids, types, statuses and times, never the URL (read from the store at each send) or the
secret. Like Herald's other workflows it runs outside the sandbox: keep it free of I/O, clocks and randomness.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.subscriptions import SubscriptionActivities
    from herald.domain import subscriptions as rules
    from herald.models import (
        SubscriptionEvent,
        SubscriptionMark,
        SubscriptionPost,
        SubscriptionPostResult,
        SubscriptionRun,
    )
    from workflows.notification import STORE_RETRY, STORE_TIMEOUT, failure_cause, retry_policy


@workflow.defn(name="SubscriptionWorkflow", sandboxed=False)
class SubscriptionWorkflow:
    @workflow.init
    def __init__(self, run: SubscriptionRun) -> None:
        self._run = run
        self._inbox: list[SubscriptionEvent] = list(run.pending)
        self._recent: list[str] = list(run.recent_ids)
        self._failures = run.failures
        self._posted = 0

    @workflow.signal
    def event(self, event: SubscriptionEvent) -> None:
        """One event to post after those before it; one already posted or pending is dropped."""
        if event.id in self._recent or any(e.id == event.id for e in self._inbox):
            return
        self._inbox.append(event)

    @workflow.query
    def pending(self) -> list[SubscriptionEvent]:
        return list(self._inbox)

    @workflow.run
    async def run(self, run: SubscriptionRun) -> str:
        while True:
            await workflow.wait_condition(lambda: bool(self._inbox))
            event = self._inbox[0]
            outcome = await self._post(event)
            self._inbox.pop(0)
            self._recent = rules.remember(self._recent, event.id)
            self._posted += 1
            if outcome != "sent":
                return outcome  # gone, or disabled: what was pending is dropped
            if self._posted >= run.events_per_run or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    run.model_copy(
                        update={"pending": list(self._inbox), "recent_ids": self._recent, "failures": self._failures}
                    )
                )

    async def _post(self, event: SubscriptionEvent) -> str:
        """`sent`, `gone` (the subscription was deleted or disabled meanwhile) or `disabled` (this failure was
        the last one it takes)."""
        run = self._run
        try:
            result = await workflow.execute_activity_method(
                SubscriptionActivities.post_subscription_event,
                SubscriptionPost(name=run.name, event=event),
                start_to_close_timeout=timedelta(seconds=run.send_timeout_seconds),
                retry_policy=retry_policy(run.retry),
                summary=event.type.value,
            )
        except ActivityError as err:
            cause = failure_cause(err)
            self._failures, disable = rules.after_failure(self._failures, run.max_failures)
            await self._mark(str(cause) if cause is not None else str(err), disable)
            return "disabled" if disable else "sent"
        if result is SubscriptionPostResult.gone:
            return "gone"
        if self._failures:
            self._failures = 0
            await self._mark(None, False)
        return "sent"

    async def _mark(self, error: str | None, disable: bool) -> None:
        await workflow.execute_activity_method(
            SubscriptionActivities.mark_subscription,
            SubscriptionMark(name=self._run.name, failures=self._failures, last_error=error, disable=disable),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="disable" if disable else "record the failures in a row",
        )
