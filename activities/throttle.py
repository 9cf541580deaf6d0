"""Throttle activities: hand a throttled notification (its user has no digest) to `throttle/<user_id>/<agent_id>`,
which sends one "N more from <agent>" message at the end of its hour."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy

from herald.adapters.store import Store
from herald.domain.search import throttle_attributes
from herald.domain.throttle import summary_workflow_id
from herald.models import ThrottleEnqueue, ThrottleStart
from herald.models.inbox import content_of


class ThrottleActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="enqueue_throttled")
    async def enqueue_throttled(self, request: ThrottleEnqueue) -> None:
        """Signal-with-start the user and agent's summary workflow: it starts on the first item and keeps the rest
        (an item is held once per notification, so a retry adds nothing)."""
        # The inbox shows a throttled notification with what it said, as it does digested ones.
        await self._store.notifications.keep_content(content_of(request.item.item, request.user_id))
        await activity.client().start_workflow(
            "ThrottleSummaryWorkflow",
            ThrottleStart(user_id=request.user_id, agent_id=request.agent_id, policy=request.policy),
            id=summary_workflow_id(request.user_id, request.agent_id),
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="add",
            start_signal_args=[request.item],
            search_attributes=throttle_attributes(request.user_id, request.agent_id),
            static_summary=f"throttled: {request.agent_id} to {request.user_id}, one message at the hour's end",
        )
