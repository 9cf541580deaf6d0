"""An example agent that is itself a Temporal workflow: it asks a person through Herald and waits, durably.

The agent starts Herald's `NotificationWorkflow` as a child and awaits its outcome; a worker restart, or a
person who answers days later, loses nothing. Register `ApprovalAgentWorkflow` on a worker next to
Herald's workflows (`create_worker(..., extra_workflows=[ApprovalAgentWorkflow])`).

It lives in a module of its own, importing only models and workflows, so Temporal's sandbox can load it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from herald.models import NotificationOutcome, NotificationRequest
    from workflows.notification import NotificationWorkflow
    from workflows.options import notification_start


@workflow.defn(name="ApprovalAgentWorkflow")
class ApprovalAgentWorkflow:
    """Ask, wait for the answer, and act on it (here: say what was decided)."""

    @workflow.run
    async def run(self, request: NotificationRequest) -> str:
        # The options every start of a notification takes (its id, search attributes and summary).
        start = notification_start(request.notification)
        outcome: NotificationOutcome = await workflow.execute_child_workflow(
            NotificationWorkflow.run,
            request,
            id=start.id,
            id_reuse_policy=start.id_reuse_policy,
            search_attributes=start.search_attributes,
            static_summary=start.static_summary,
        )
        if outcome.answer is None:
            return f"no answer ({outcome.status.value})"
        answer = outcome.answer
        return f"{answer.action_id} by {answer.user_id} via {answer.channel.value}"
