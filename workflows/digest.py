"""DigestWorkflow `digest/<user_id>`: collects a user's low-priority notifications and sends them as one email.

Items arrive by signal-with-start (`add`) from NotificationWorkflow. At the next boundary in the user's time
zone (the top of the hour, or the chosen daily hour; read from the preferences at each cycle, so a cadence
change applies from the next boundary), the pending items go out as one notification through the usual
pipeline (the email channel, its retries and fallback) and the workflow continues as new with whatever
arrived meanwhile. With nothing pending it waits for the next item without a timer. A period that gathers many
items (each one a signal in the history) continues as new before its boundary when the server suggests it or
after `items_per_run` items, carrying the pending items and the boundary it waits for. An item is held once
per notification id, so a repeated signal adds nothing; `flush` sends now, `pending` lists what waits.

Like NotificationWorkflow it runs outside the sandbox. Idle digests outnumber the SDK's workflow cache, so
runs are evicted and replayed often, and a sandboxed run cost twice the worker CPU to start and about 6 ms more
per notification once the cache was full of them (bench/analysis/scale.md). Keep this module free of I/O,
clocks and randomness; the replay of tests/histories is the guard.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.digest import DigestActivities
    from herald.domain import search
    from herald.domain.digest import digest_notification
    from herald.models import (
        DigestBoundary,
        DigestFlush,
        DigestItem,
        DigestRecord,
        DigestSchedule,
        DigestStart,
        NotificationRequest,
    )
    from workflows.notification import SEARCHABLE_PATCH, STORE_RETRY, STORE_TIMEOUT
    from workflows.options import start_notification_child

# New runs continue as new mid-period when the history grows (the server's suggestion, or `items_per_run`
# items), keeping what is pending and the boundary; older histories replay the run that only rotated after a send.
ROTATE_PATCH = "digest-rotate-v1"


@workflow.defn(name="DigestWorkflow", sandboxed=False)
class DigestWorkflow:
    @workflow.init
    def __init__(self, start: DigestStart) -> None:
        self._start = start
        self._items: dict[str, DigestItem] = {item.notification_id: item for item in start.items}
        self._sent = start.sent
        self._flush_requested = False
        self._last_digest_id: str | None = None
        self._added = 0  # items signalled to this run (each one an event in its history)

    @workflow.signal
    def add(self, item: DigestItem) -> None:
        """Hold an item for the next digest; the same notification twice is held once."""
        self._added += 1
        self._items.setdefault(item.notification_id, item)

    @workflow.query
    def pending(self) -> list[DigestItem]:
        return sorted(self._items.values(), key=lambda i: i.created_at)

    @workflow.update
    async def flush(self) -> DigestFlush:
        """Send what is pending now: the digest notification's id, none when nothing was pending."""
        if not self._items:
            return DigestFlush()
        sent_before = self._sent
        self._flush_requested = True
        await workflow.wait_condition(lambda: self._sent > sent_before)
        return DigestFlush(digest_id=self._last_digest_id)

    @workflow.run
    async def run(self, start: DigestStart) -> None:
        self._begin(start)
        if not workflow.patched(ROTATE_PATCH):
            await self._run_before_rotation(start)
            return
        # Continued mid-period, the boundary is known and the items are pending; else wait for the first item.
        due = start.due if start.due is not None else await self._first_item(start)
        await self._wait_for_boundary(due)
        await self._send()
        while True:  # _rotate returns only for a flush of items that came in during the send: send them too
            await self._rotate(None)
            await self._send()

    def _begin(self, start: DigestStart) -> None:
        if workflow.patched(SEARCHABLE_PATCH):  # findable by user, whoever started it
            workflow.upsert_search_attributes(
                search.missing_updates(workflow.info().typed_search_attributes, search.digest_attributes(start.user_id))
            )

    async def _first_item(self, start: DigestStart) -> datetime | None:
        """Nothing pending: wait for the first item without a timer, so an idle user costs no history (a history
        grown large meanwhile continues as new); then the boundary it waits for."""
        await workflow.wait_condition(lambda: bool(self._items) or self._should_rotate())
        if not self._items:
            await self._rotate(None)
        return await self._next_digest_at(start)

    async def _wait_for_boundary(self, due: datetime | None) -> None:
        """Until the boundary or a flush; a history that grows large meanwhile continues as new with the boundary."""
        await self._wait_until(due, rotate=True)
        if not self._flush_requested and due is not None and workflow.now() < due and self._should_rotate():
            await self._rotate(due)  # returns only when a flush came in meanwhile: send now

    async def _run_before_rotation(self, start: DigestStart) -> None:
        """Runs recorded before ROTATE_PATCH: one period per run, no rotation while it waits."""
        await workflow.wait_condition(lambda: bool(self._items))
        due = await self._next_digest_at(start)
        await self._wait_until(due)
        await self._send()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            DigestStart(user_id=start.user_id, items=self.pending(), sent=self._sent, policy=start.policy)
        )

    async def _next_digest_at(self, start: DigestStart) -> datetime | None:
        """The next boundary in the user's time zone; None when digests are off (send what is held now)."""
        boundary: DigestBoundary | None = await workflow.execute_activity_method(
            DigestActivities.next_digest_at,
            DigestSchedule(user_id=start.user_id, after=workflow.now()),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="next digest boundary",
        )
        # A bare None is what workers before DigestBoundary returned for "off" (a bare time reads as the model).
        return boundary.at if boundary is not None else None

    def _should_rotate(self) -> bool:
        return self._added >= self._start.items_per_run or workflow.info().is_continue_as_new_suggested()

    async def _rotate(self, due: datetime | None) -> None:
        """Continue as new with what is pending (and, mid-period, the boundary it waits for) once every handler
        has finished; returns, without rotating, only when a flush came in meanwhile (it waits for a send)."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self._flush_requested)
        if self._flush_requested:
            return
        start = self._start
        workflow.continue_as_new(
            DigestStart(
                user_id=start.user_id,
                items=self.pending(),
                sent=self._sent,
                policy=start.policy,
                due=due,
                items_per_run=start.items_per_run,
            )
        )

    async def _wait_until(self, due: datetime | None, *, rotate: bool = False) -> None:
        """Until the boundary, or a flush (or, with `rotate`, until the run should continue as new). No boundary
        (the digest was switched off): send what is held now."""
        if due is None:
            return
        wait = (due - workflow.now()).total_seconds()
        if wait <= 0:
            return
        try:
            await workflow.wait_condition(
                lambda: self._flush_requested or (rotate and self._should_rotate()),
                timeout=timedelta(seconds=wait),
                timeout_summary="next digest",
            )
        except TimeoutError:
            pass

    async def _send(self) -> None:
        items = self.pending()
        self._items.clear()
        digest_id = f"digest-{workflow.uuid4().hex}"
        notification = digest_notification(self._start.user_id, digest_id, items, workflow.now())
        # Abandoned: the email keeps its own retries and fallback even after this run continues as new.
        await start_notification_child(
            NotificationRequest(notification=notification, policy=self._start.policy, is_digest=True)
        )
        await workflow.execute_activity_method(
            DigestActivities.record_digest,
            DigestRecord(digest_id=digest_id, notification_ids=[i.notification_id for i in items]),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary=f"record digest of {len(items)}",
        )
        self._last_digest_id = digest_id
        self._sent += 1
        self._flush_requested = False
