"""The baseline every benchmark ratio divides by: a workflow that does nothing but start and complete.

It lives alone in a module that imports nothing but temporalio, because the workflow sandbox re-imports a
workflow's module on every run: a heavy module would make the baseline cost more than the round trip it stands for.
"""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="BenchEmptyWorkflow")
class EmptyWorkflow:
    @workflow.run
    async def run(self) -> None:
        return None
