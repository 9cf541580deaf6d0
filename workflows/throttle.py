"""ThrottleSummaryWorkflow `throttle/<user_id>/<agent_id>`: an hour's throttled notifications from one agent, for a
user without a digest, sent as one "N more from <agent>" message when the hour ends. Never dropped.

Items arrive by signal-with-start (`add`) from NotificationWorkflow (activities/throttle.py), each with the end of
its hour (`until`, decided by the preference activity and recorded there). The run waits on a durable timer until
the earliest item's hour ends, sends the items of that hour as one notification through the usual pipeline (its
retries and fallback; `is_digest`, so it is never throttled, digested or silenced again), records which
notifications it carried (their outcome's `digest_id`), and ends, or continues as new with items of a later hour
that arrived meanwhile. An item is held once per notification id, so a repeated signal adds nothing.

Like the other workflows it runs outside the sandbox: keep it free of I/O, clocks and randomness.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.digest import DigestActivities
    from herald.domain.throttle import summary_notification
    from herald.models import DigestRecord, NotificationRequest, ThrottledItem, ThrottleStart
    from workflows.notification import STORE_RETRY, STORE_TIMEOUT
    from workflows.options import start_notification_child


@workflow.defn(name="ThrottleSummaryWorkflow", sandboxed=False)
class ThrottleSummaryWorkflow:
    @workflow.init
    def __init__(self, start: ThrottleStart) -> None:
        self._start = start
        self._items: dict[str, ThrottledItem] = {i.item.notification_id: i for i in start.items}

    @workflow.signal
    def add(self, item: ThrottledItem) -> None:
        """Hold a throttled notification for its hour's message; the same notification twice is held once."""
        self._items.setdefault(item.item.notification_id, item)

    @workflow.query
    def pending(self) -> list[ThrottledItem]:
        return sorted(self._items.values(), key=lambda i: (i.until, i.item.created_at))

    @workflow.run
    async def run(self, start: ThrottleStart) -> None:
        await workflow.wait_condition(lambda: bool(self._items))
        due = min(i.until for i in self._items.values())
        wait = (due - workflow.now()).total_seconds()
        if wait > 0:
            await workflow.sleep(wait, summary="the end of the throttle's hour")
        await self._send([i for i in self.pending() if i.until <= due])
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._items:  # a later hour's, arrived meanwhile
            workflow.continue_as_new(
                ThrottleStart(user_id=start.user_id, agent_id=start.agent_id, policy=start.policy, items=self.pending())
            )

    async def _send(self, held: list[ThrottledItem]) -> None:
        for item in held:
            del self._items[item.item.notification_id]
        start = self._start
        summary_id = f"throttle-{workflow.uuid4().hex}"
        items = [i.item for i in held]
        notification = summary_notification(start.user_id, start.agent_id, summary_id, items, workflow.now())
        # Abandoned: the message keeps its own retries and fallback after this run ends.
        await start_notification_child(
            NotificationRequest(notification=notification, policy=start.policy, is_digest=True)
        )
        await workflow.execute_activity_method(
            DigestActivities.record_digest,
            DigestRecord(digest_id=summary_id, notification_ids=[i.notification_id for i in items]),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"record the summary of {len(items)}",
        )
