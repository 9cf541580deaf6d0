"""check_duplicate: claim the notification's content key in the store."""

from __future__ import annotations

from temporalio import activity

from herald.adapters.store import Store
from herald.models import DedupCheck, DedupResult


class DedupActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="check_duplicate")
    async def check_duplicate(self, check: DedupCheck) -> DedupResult:
        """Idempotent under retry: the first owner of a key stays its owner for the window."""
        owner = await self._store.notifications.claim_dedup_key(check.key, check.notification_id, check.window_seconds)
        return DedupResult(duplicate=owner != check.notification_id, owner_notification_id=owner)
