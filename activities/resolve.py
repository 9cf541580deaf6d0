"""announce_resolved: tell a resolved notification's recipient where it was delivered. resolve_notifications: the
monitor resolves what a rule with `resolve: true` fired, running or ended delivered (a workflow cannot send another
workflow an update).
load_ended: what ResolveEndedWorkflow reads of a notification whose workflow has ended (its recorded outcome)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from activities.delivery import to_application_error
from herald.domain.errors import DeliveryError
from herald.models import (
    EndedNotification,
    OutcomeQuery,
    ResolvedAnnounced,
    ResolvedNotice,
    ResolvedNotifications,
    ResolveNotifications,
    ResolveRequest,
)
from herald.services.resolve import ResolveService, resolve_ended_workflows, resolve_workflows


class ResolveActivities:
    def __init__(self, service: ResolveService) -> None:
        self._service = service

    @activity.defn(name="announce_resolved")
    async def announce_resolved(self, notice: ResolvedNotice) -> ResolvedAnnounced:
        """Temporal retries what may pass, on the delivery schedule; a push relay that is down is one of those."""
        info = activity.info()
        timeout = info.start_to_close_timeout.total_seconds() if info.start_to_close_timeout else None
        try:
            return ResolvedAnnounced(told=await self._service.announce(notice, info.attempt, timeout))
        except DeliveryError as exc:
            raise to_application_error(exc, info.attempt) from None

    @activity.defn(name="resolve_notifications")
    async def resolve_notifications(self, request: ResolveNotifications) -> ResolvedNotifications:
        """Each workflow's `resolve` update, through the worker's own client; an error (no worker took an update in
        time) fails the attempt, to be retried: a resolve repeated is a no-op."""
        info = activity.info()
        timeout = info.start_to_close_timeout / 2 if info.start_to_close_timeout else timedelta(seconds=10)
        client = activity.client()
        resolved = await resolve_workflows(client, request.workflow_ids, ResolveRequest(by=request.by), timeout)
        # What had ended delivered is resolved too, as HeraldClient.resolve does (herald.services.resolve).
        ended = [w for w in request.workflow_ids if w not in resolved]
        resolved += await resolve_ended_workflows(client, ended, request.by, request.policy, info.task_queue)
        return ResolvedNotifications(resolved=resolved)

    @activity.defn(name="load_ended")
    async def load_ended(self, query: OutcomeQuery) -> EndedNotification | None:
        """The recorded outcome, title and notify_resolved verdict of an ended notification (None: none recorded)."""
        return await self._service.ended(query.notification_id)
