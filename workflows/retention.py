"""RetentionWorkflow: one cleanup of the audit tables, started daily by the `herald-retention` schedule.

The cutoff comes from workflow time, so a retried or replayed run deletes against the same instant. Outside the
sandbox like Herald's other workflows, so no worker pays for preparing a sandbox at its start; the replay of
tests/histories guards its determinism.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retention import RetentionActivities
    from herald.models import PurgeRequest, RetentionReport, RetentionRequest

# A large backlog is deleted in many batches: allow time, and heartbeat so a dead worker is noticed quickly.
PURGE_TIMEOUT = timedelta(hours=1)
PURGE_HEARTBEAT = timedelta(minutes=1)
PURGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=10), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=5)
)


@workflow.defn(name="RetentionWorkflow", sandboxed=False)
class RetentionWorkflow:
    @workflow.run
    async def run(self, request: RetentionRequest) -> RetentionReport:
        now = workflow.now()
        return await workflow.execute_activity_method(
            RetentionActivities.purge_expired,
            PurgeRequest(cutoff=now - timedelta(days=request.retention_days), now=now, batch_size=request.batch_size),
            start_to_close_timeout=PURGE_TIMEOUT,
            heartbeat_timeout=PURGE_HEARTBEAT,
            retry_policy=PURGE_RETRY,
            summary="purge expired audit rows",
        )
