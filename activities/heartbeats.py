"""count_heartbeat_event: a heartbeat's miss or resume, counted in the worker's metrics (herald_heartbeat_events).

A local activity, so the count happens in a worker process (a workflow must not touch process state) and costs
no extra round trip to the server. The notification itself is a NotificationWorkflow, counted with the others.
"""

from __future__ import annotations

from temporalio import activity

from herald.adapters import metrics
from herald.models import HeartbeatEvent


@activity.defn(name="count_heartbeat_event")
async def count_heartbeat_event(event: HeartbeatEvent) -> None:
    metrics.HEARTBEAT_EVENTS.labels(event.value).inc()
