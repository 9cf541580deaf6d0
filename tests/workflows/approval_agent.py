"""An example agent that is itself a Temporal workflow: it asks a person through Herald and waits, durably.

The agent starts Herald's `NotificationWorkflow` as a child and awaits its outcome; a worker restart, or a
person who answers days later, loses nothing. Register `ApprovalAgentWorkflow` on a worker next to
Herald's workflows (`create_worker(..., extra_workflows=[ApprovalAgentWorkflow])`).

It lives in a module of its own, importing only models and workflows, so Temporal's sandbox can load it.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from herald.models import NotificationRequest
    from workflows.options import start_notification_child


@workflow.defn(name="ApprovalAgentWorkflow")
class ApprovalAgentWorkflow:
    """Ask, wait for the answer, and act on it (here: say what was decided)."""

    @workflow.run
    async def run(self, request: NotificationRequest) -> str:
        # Started as Herald starts every notification (its id, search attributes and summary); it ends with the agent.
        child = await start_notification_child(request, parent_close_policy=ParentClosePolicy.TERMINATE)
        outcome = await child
        if outcome.answer is None:
            return f"no answer ({outcome.status.value})"
        answer = outcome.answer
        return f"{answer.action_id} by {answer.user_id} via {answer.channel.value}"
