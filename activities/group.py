"""Group activities: hand a grouped notification to `group/<user_id>/<agent_id>/<group_key>` (signal-with-start),
and record the group's sent message on each member's outcome."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from herald.adapters import metrics
from herald.adapters.store import Store
from herald.domain.grouping import group_workflow_id
from herald.domain.search import group_attributes
from herald.models import GroupEnqueue, GroupRecord, GroupStart
from herald.models.inbox import content_of


class GroupActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="enqueue_grouped")
    async def enqueue_grouped(self, request: GroupEnqueue) -> None:
        """Signal-with-start the group's workflow: it starts on the first member and keeps the rest (a member is held
        once per notification, so a retry adds nothing)."""
        # The inbox shows a grouped notification with what it said, as it does digested ones.
        await self._store.notifications.keep_content(content_of(request.member.item, request.user_id))
        await activity.client().start_workflow(
            "GroupWorkflow",
            GroupStart(
                user_id=request.user_id, agent_id=request.agent_id, group_key=request.group_key, policy=request.policy
            ),
            id=group_workflow_id(request.user_id, request.agent_id, request.group_key),
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="add",
            start_signal_args=[request.member],
            search_attributes=group_attributes(request.user_id, request.agent_id),
            static_summary=f"group: {request.agent_id} to {request.user_id}, one message per batch",
        )

    @activity.defn(name="record_grouped")
    async def record_grouped(self, record: GroupRecord) -> None:
        """Each member's outcome takes the group's message and its channels. A member whose own outcome is not
        recorded yet (its workflow records it right after handing it over) is retried for."""
        missing = await self._store.notifications.record_grouped(record)
        if missing:
            raise ApplicationError(f"{len(missing)} member outcome(s) not recorded yet", type="MembersNotRecorded")
        metrics.GROUP_SIZE.observe(len(record.notification_ids))
