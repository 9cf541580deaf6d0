"""ResolveEndedWorkflow `resolve/<notification_id>`: resolve a notification whose own workflow has already completed,
delivered (herald.domain.resolve.ENDED_OPEN), so its agent's resolve still updates what the person was shown.

A NotificationWorkflow ends as soon as it delivered, so the commonest alert is over in Temporal long before its agent
says the problem is over. HeraldClient.resolve finds those by visibility (`ended_query`) and starts one of these per
notification, its id never reused: a second resolve of the same notification is refused at the start, a no-op.

The run reads the recorded outcome (the truth: visibility only found it), ends at once when it is not open
(`ended_not_open`), else records it `resolved` (who, when) and tells what was delivered as a running resolve does:
the same `announce_resolved` (the live inbox's frame, the Web Push replaced, email and SMS as the user's
`notify_resolved` allows, from `resolve_plan`) and the same `conclude_chat` (Slack and Telegram edited to say
"Resolved"). The outcome is recorded first, so a status read says `resolved` while the telling is still retried.

Like the other workflows it runs outside the sandbox: keep it free of I/O, clocks and randomness.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.audit import AuditActivities
    from activities.chat_conclusion import ChatActivities
    from activities.resolve import ResolveActivities
    from herald.domain import resolve
    from herald.models import (
        ChatConclusion,
        OutcomeQuery,
        Resolution,
        ResolveEnded,
        ResolveEndedResult,
    )
    from workflows.notification import STORE_RETRY, STORE_TIMEOUT, retry_policy


@workflow.defn(name="ResolveEndedWorkflow", sandboxed=False)
class ResolveEndedWorkflow:
    @workflow.run
    async def run(self, request: ResolveEnded) -> ResolveEndedResult:
        ended = await workflow.execute_activity_method(
            ResolveActivities.load_ended,
            OutcomeQuery(notification_id=request.notification_id),
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="read the recorded outcome",
        )
        reason = resolve.ended_not_open(ended.outcome if ended is not None else None)
        if ended is None or reason is not None:
            return ResolveEndedResult(notification_id=request.notification_id, resolved=False, reason=reason)
        outcome = resolve.resolved_outcome(ended.outcome, Resolution(by=request.by, at=workflow.now()))
        await workflow.execute_activity_method(
            AuditActivities.record_outcome,
            outcome,
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
            summary="record outcome: resolved",
        )
        plan = resolve.resolve_plan(outcome.channels, ended.notify_resolved)
        announced = await self._best_effort(
            request,
            ResolveActivities.announce_resolved,
            resolve.ended_notice(outcome, ended.title, plan),
            "tell what was delivered: resolved",
        )
        if plan.edit:
            conclusion = ChatConclusion(
                notification_id=outcome.notification_id, user_id=outcome.user_id, status=outcome.status.value
            )
            await self._best_effort(request, ChatActivities.conclude_chat, conclusion, "edit the chat messages")
        told = list(getattr(announced, "told", []) or [])
        return ResolveEndedResult(notification_id=request.notification_id, resolved=True, told=told)

    async def _best_effort(self, request: ResolveEnded, activity: Any, arg: Any, summary: str) -> Any:
        """On the delivery retry schedule; one that fails for good changes nothing (the outcome says `resolved`)."""
        try:
            return await workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=timedelta(seconds=request.policy.send_timeout_seconds),
                retry_policy=retry_policy(request.policy.retry),
                summary=summary,
            )
        except ActivityError:
            return None
