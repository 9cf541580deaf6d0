"""record_outcome and record_ops_alert: what reached whom, kept after Temporal's retention has passed; get_outcome
reads one back. Recording an outcome also hands its events (delivered, failed, answered, ...) to the subscriptions
that want them (activities/subscriptions.py)."""

from __future__ import annotations

import logging

from temporalio import activity

from activities.subscriptions import SubscriptionActivities
from herald.adapters import metrics
from herald.adapters.store import Store
from herald.domain.subscriptions import outcome_events
from herald.models import NotificationOutcome, OpsAlert, OutcomeQuery, utcnow

log = logging.getLogger("herald.ops")
audit_log = logging.getLogger("herald.audit")


class AuditActivities:
    def __init__(self, store: Store, subscriptions: SubscriptionActivities | None = None) -> None:
        self._store = store
        self._subscriptions = subscriptions

    @activity.defn(name="record_outcome")
    async def record_outcome(self, outcome: NotificationOutcome) -> None:
        await self._store.notifications.record_outcome(outcome)
        metrics.count_outcome(outcome)
        audit_log.info("outcome %s recorded", outcome.status.value)
        if self._subscriptions is not None:
            await self._subscriptions.publish(outcome_events(outcome, utcnow()))

    @activity.defn(name="record_ops_alert")
    async def record_ops_alert(self, alert: OpsAlert) -> None:
        log.warning("ops alert %s for notification %s: %s", alert.kind, alert.notification_id, alert.message)
        await self._store.notifications.record_ops_alert(alert.notification_id, alert.kind, alert.message)

    @activity.defn(name="get_outcome")
    async def get_outcome(self, query: OutcomeQuery) -> NotificationOutcome | None:
        """A finished notification's recorded outcome (None while it runs): a duplicate question reads the
        answer of the question it repeats here when that one had already finished."""
        return await self._store.notifications.get_outcome(query.notification_id)
