"""announce_resolved: tell a resolved notification's recipient where it was delivered."""

from __future__ import annotations

from temporalio import activity

from activities.delivery import to_application_error
from herald.domain.errors import DeliveryError
from herald.models import ResolvedAnnounced, ResolvedNotice
from herald.services.resolve import ResolveService


class ResolveActivities:
    def __init__(self, service: ResolveService) -> None:
        self._service = service

    @activity.defn(name="announce_resolved")
    async def announce_resolved(self, notice: ResolvedNotice) -> ResolvedAnnounced:
        """Temporal retries what may pass, on the delivery schedule; a push relay that is down is one of those."""
        info = activity.info()
        timeout = info.start_to_close_timeout.total_seconds() if info.start_to_close_timeout else None
        try:
            return ResolvedAnnounced(told=await self._service.announce(notice, info.attempt, timeout))
        except DeliveryError as exc:
            raise to_application_error(exc, info.attempt) from None
