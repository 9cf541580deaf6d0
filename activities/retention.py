"""purge_expired: delete audit rows past the retention period, in batches, heartbeating between them, and the
answer rows (used links, SMS questions, snoozes) that have expired; the report counts both, by table."""

from __future__ import annotations

import logging

from temporalio import activity

from herald.adapters import metrics
from herald.adapters.store import Store
from herald.models import PurgeRequest, RetentionReport

log = logging.getLogger("herald.retention")


class RetentionActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="purge_expired")
    async def purge_expired(self, request: PurgeRequest) -> RetentionReport:
        """Safe to retry: rows deleted by an earlier try are simply not found again."""
        deleted = await self._store.retention.purge_older_than(
            request.cutoff,
            now=request.now.timestamp(),
            batch_size=request.batch_size,
            progress=lambda table, count: activity.heartbeat(table, count),
        )
        # Used answer links, SMS questions and snoozes go when they expire, not after the retention period.
        deleted["answers"] = await self._store.answers.purge_expired(request.now)
        for table, count in deleted.items():
            metrics.RETENTION_DELETED.labels(table).inc(count)
        log.info("retention: deleted %d rows older than %s", sum(deleted.values()), request.cutoff.isoformat())
        return RetentionReport(cutoff=request.cutoff, deleted=deleted)
