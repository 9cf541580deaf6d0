"""How a NotificationWorkflow is started, wherever it is started from: HeraldClient (`notify`, a rule without a
cooldown; starter/client.py) and, as abandoned children, the monitor's firings and the digest's email
(`start_notification_child`). One id, one id-reuse policy, the same search attributes and summary, from
`notification_start`. No I/O here: the client's start is HeraldClient's.

A notification's id is taken once: a finished one is not started again under it (REJECT_DUPLICATE) for the
namespace's retention. Only the monitor's runs recorded before its firings patch allowed a reuse (ALLOW_DUPLICATE), and pass it.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from herald.domain import search
    from herald.models import AgentNotification, NotificationOutcome, NotificationRequest
    from workflows.notification import NotificationWorkflow


@dataclass(frozen=True)
class NotificationStart:
    """The options every start of `notification/<notification_id>` shares."""

    id: str
    id_reuse_policy: WorkflowIDReusePolicy
    search_attributes: TypedSearchAttributes
    static_summary: str


def notification_start(
    notification: AgentNotification, *, id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE
) -> NotificationStart:
    return NotificationStart(
        id=notification.workflow_id,
        id_reuse_policy=id_reuse_policy,
        search_attributes=search.start_attributes(notification),
        static_summary=search.notification_summary(notification),
    )


async def start_notification_child(
    request: NotificationRequest,
    *,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.REJECT_DUPLICATE,
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.ABANDON,
) -> ChildWorkflowHandle[NotificationWorkflow, NotificationOutcome]:
    """Start the notification from a workflow; await the handle for its outcome. Abandoned unless told otherwise:
    it outlives its parent (a monitor or a digest continuing as new). WorkflowAlreadyStartedError when its id is
    taken."""
    start = notification_start(request.notification, id_reuse_policy=id_reuse_policy)
    return await workflow.start_child_workflow(
        NotificationWorkflow.run,
        request,
        id=start.id,
        parent_close_policy=parent_close_policy,
        id_reuse_policy=start.id_reuse_policy,
        search_attributes=start.search_attributes,
        static_summary=start.static_summary,
    )
