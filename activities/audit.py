"""record_outcome and record_ops_alert: what reached whom, kept after Temporal's retention has passed; get_outcome
reads one back."""

from __future__ import annotations

import logging

from temporalio import activity

from herald.adapters import metrics
from herald.adapters.store import Store
from herald.models import NotificationOutcome, OpsAlert, OutcomeQuery

log = logging.getLogger("herald.ops")
audit_log = logging.getLogger("herald.audit")


class AuditActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="record_outcome")
    async def record_outcome(self, outcome: NotificationOutcome) -> None:
        await self._store.notifications.record_outcome(outcome)
        metrics.count_outcome(outcome)
        audit_log.info("outcome %s recorded", outcome.status.value)

    @activity.defn(name="record_ops_alert")
    async def record_ops_alert(self, alert: OpsAlert) -> None:
        log.warning("ops alert %s for notification %s: %s", alert.kind, alert.notification_id, alert.message)
        await self._store.notifications.record_ops_alert(alert.notification_id, alert.kind, alert.message)

    @activity.defn(name="get_outcome")
    async def get_outcome(self, query: OutcomeQuery) -> NotificationOutcome | None:
        """A finished notification's recorded outcome (None while it runs): a duplicate question reads the
        answer of the question it repeats here when that one had already finished."""
        return await self._store.notifications.get_outcome(query.notification_id)
