"""Digest activities: hand a notification to its user's digest workflow, schedule it, record what it carried."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from herald.adapters import metrics
from herald.adapters.store import Store
from herald.domain.schedule import next_digest_at
from herald.models import DigestBoundary, DigestEnqueue, DigestRecord, DigestSchedule, DigestStart
from herald.models.inbox import content_of


class DigestActivities:
    def __init__(self, store: Store, period_seconds: float | None = None) -> None:
        self._store = store
        self._period_seconds = period_seconds  # HERALD_DIGEST_PERIOD_SECONDS: second-level boundaries for tests

    @activity.defn(name="enqueue_digest")
    async def enqueue_digest(self, request: DigestEnqueue) -> None:
        """Signal-with-start `digest/<user_id>`: it starts on the first item and keeps the rest."""
        item = request.item
        # The inbox shows digested notifications with what they said, as it does sent ones.
        await self._store.notifications.keep_content(content_of(item, request.user_id))
        await activity.client().start_workflow(
            "DigestWorkflow",
            DigestStart(user_id=request.user_id, policy=request.policy),
            id=f"digest/{request.user_id}",
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="add",
            start_signal_args=[request.item],
        )

    @activity.defn(name="next_digest_at")
    async def next_digest_at(self, schedule: DigestSchedule) -> DigestBoundary:
        preferences = await self._store.users.get_preferences(schedule.user_id)
        return DigestBoundary(at=next_digest_at(preferences, schedule.after, self._period_seconds))

    @activity.defn(name="record_digest")
    async def record_digest(self, record: DigestRecord) -> None:
        await self._store.notifications.mark_digested(record.notification_ids, record.digest_id)
        metrics.DIGEST_SIZE.observe(len(record.notification_ids))
