"""The baseline every benchmark ratio divides by: a workflow that does nothing but start and complete.

It runs outside the workflow sandbox, as NotificationWorkflow does, so a ratio compares like with like: the
sandbox's cost of setting up each run is no part of the baseline, nor of the notification.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="BenchEmptyWorkflow", sandboxed=False)
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None
