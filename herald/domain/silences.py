"""Silences, decided: which notification a silence holds, when it is in force, and what a new one must satisfy.

Pure functions over herald.models; the store keeps silences, the `check_silences` activity asks `first_match`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from herald.models import (
    AgentNotification,
    Silence,
    SilenceInput,
    SilenceMatchers,
    SilenceQuery,
    SilenceState,
    new_notification_id,
)
from herald.models.common import as_utc


class SilenceProblem(ValueError):
    """A silence that can't be made as given; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def query_for(notification: AgentNotification, rule: str | None) -> SilenceQuery:
    """What a silence can match of `notification` (ids and its priority: no title, no body)."""
    return SilenceQuery(
        notification_id=notification.notification_id,
        agent_id=notification.agent_id,
        user_id=notification.recipient,
        priority=notification.priority,
        rule=rule,
        dedup_key=notification.dedup_key,
    )


def state_of(silence: Silence, now: datetime) -> SilenceState:
    """`pending` before starts_at, `active` from starts_at until (not including) ends_at, then `expired`."""
    if as_utc(now) < as_utc(silence.starts_at):
        return SilenceState.pending
    if as_utc(now) < as_utc(silence.ends_at):
        return SilenceState.active
    return SilenceState.expired


def matchers_match(matchers: SilenceMatchers, query: SilenceQuery) -> bool:
    """Every matcher given equals the notification's field, and its priority is at most `max_priority` (so a
    critical notification is matched only by a silence whose max_priority is critical)."""
    if query.priority.rank > matchers.max_priority.rank:
        return False
    pairs = (
        (matchers.agent_id, query.agent_id),
        (matchers.rule, query.rule),
        (matchers.user_id, query.user_id),
        (matchers.dedup_key, query.dedup_key),
    )
    return all(wanted is None or wanted == actual for wanted, actual in pairs)


def matches(silence: Silence, query: SilenceQuery, now: datetime) -> bool:
    """Whether `silence` holds the notification described by `query` at `now`: in force, and its matchers match."""
    return state_of(silence, now) is SilenceState.active and matchers_match(silence.matchers, query)


def first_match(silences: Iterable[Silence], query: SilenceQuery, now: datetime) -> Silence | None:
    """The silence that holds the notification: of those that match, the one made first (a stable answer when
    several do), else None."""
    holding = [s for s in silences if matches(s, query, now)]
    return min(holding, key=lambda s: (as_utc(s.created_at), s.silence_id)) if holding else None


def new_silence(body: SilenceInput, created_by: str, now: datetime, silence_id: str | None = None) -> Silence:
    """The silence to store: starts_at defaults to now; ends_at must be after starts_at and in the future."""
    starts_at = as_utc(body.starts_at) if body.starts_at is not None else as_utc(now)
    ends_at = as_utc(body.ends_at)
    if ends_at <= as_utc(now):
        raise SilenceProblem("ends_at", "must be in the future")
    if ends_at <= starts_at:
        raise SilenceProblem("ends_at", "must be after starts_at")
    return Silence(
        silence_id=silence_id or new_notification_id(),
        matchers=body.matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        comment=body.comment,
        created_by=created_by,
        created_at=as_utc(now),
    )


def expired(silence: Silence, now: datetime) -> Silence:
    """The silence ended at `now` (`DELETE /v1/silences/{id}`); one already ended stays as it was. A silence that
    had not started yet ends before it began: it never matches."""
    if state_of(silence, now) is SilenceState.expired:
        return silence
    now = as_utc(now)
    return silence.model_copy(update={"ends_at": now, "starts_at": min(as_utc(silence.starts_at), now)})
