"""count_heartbeat_event: a heartbeat's miss or resume, counted in the worker's metrics (herald_heartbeat_events),
and a miss published to the subscriptions that want `heartbeat.missed`;
resolve_missed_check_in: the miss's alert resolved when the agent checks in again.

A local activity, so the count happens in a worker process (a workflow must not touch process state) and costs
no extra round trip to the server. The notification itself is a NotificationWorkflow, counted with the others.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from activities.subscriptions import SubscriptionActivities, occurrence
from herald.adapters import metrics
from herald.domain.subscriptions import heartbeat_missed_event
from herald.models import HeartbeatEvent, MissedCheckInResolve, ResolveRequest, utcnow
from herald.services.resolve import resolve_workflow

# How long the resolve waits for the alert's worker to take the update; the activity's retries cover a longer wait.
RESOLVE_RPC_SECONDS = 10.0


class HeartbeatActivities:
    def __init__(self, subscriptions: SubscriptionActivities | None = None) -> None:
        self._subscriptions = subscriptions

    @activity.defn(name="count_heartbeat_event")
    async def count_heartbeat_event(self, event: HeartbeatEvent) -> None:
        """Count the miss or resume; a miss is also `heartbeat.missed` to the subscriptions that want it (the
        heartbeat named by this workflow's id, the event's id the same on every retry of this step)."""
        metrics.HEARTBEAT_EVENTS.labels(event.value).inc()
        if event is HeartbeatEvent.missed and self._subscriptions is not None:
            missed = heartbeat_missed_event(activity.info().workflow_id or "", occurrence(), utcnow())
            if missed is not None:
                await self._subscriptions.publish([missed])


@activity.defn(name="resolve_missed_check_in")
async def resolve_missed_check_in(request: MissedCheckInResolve) -> bool:
    """Resolve a heartbeat's "missed its check-in" alert once the agent is back: a no-op (False) when it has
    finished already; when it is still open (held by quiet hours, retrying), it stops and sends nothing more."""
    return await resolve_workflow(
        activity.client(), request.workflow_id, ResolveRequest(by=request.by), timedelta(seconds=RESOLVE_RPC_SECONDS)
    )
