"""What the retention schedule runs with and reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
    Field,
)


class RetentionRequest(BaseModel):
    """The input of RetentionWorkflow, fixed in the schedule: how many days of history to keep."""

    retention_days: int = Field(ge=1)
    batch_size: int = Field(default=1000, gt=0)


class PurgeRequest(BaseModel):
    """Delete what was recorded before `cutoff`, and dedup keys expired by `now` (both from workflow time)."""

    cutoff: datetime
    now: datetime
    batch_size: int = Field(default=1000, gt=0)


class RetentionReport(BaseModel):
    """What one cleanup deleted, by table."""

    cutoff: datetime
    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values())
