"""Wall-clock schedules in a user's time zone: when quiet hours end, when the next digest goes out.

Pure functions over aware datetimes (any zone in, UTC out). Local times are resolved the same way everywhere:
a time that does not exist (the spring-forward gap) becomes the first instant after the gap, and a time that
happens twice (fall-back) means its first occurrence.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from herald.models import DigestCadence, Preferences, QuietHoursAction, parse_quiet_window

_MINUTE = timedelta(minutes=1)
# Zone offsets are whole minutes for any date a notification can have; the bound only stops a runaway loop.
_HOURLY_SEARCH_MINUTES = 3 * 24 * 60


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


def _offset_seconds(instant: datetime, tz: tzinfo) -> float:
    offset = instant.astimezone(tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def resolve_local(day: date, at: time, tz: tzinfo) -> datetime:
    """The UTC instant of local `day` `at` in `tz`: the first occurrence when it happens twice, the first instant
    after the gap when it does not happen at all."""
    first = datetime.combine(day, at, tzinfo=tz).replace(fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == first.replace(tzinfo=None):
        return instant  # exists (fold=0 is the first occurrence when it happens twice)
    # In a gap, fold=0 reads the wall time with the offset from before the transition and lands after it,
    # fold=1 with the offset from after and lands before it: the transition lies between the two.
    before = first.replace(fold=1).astimezone(UTC)
    low, high = math.floor(before.timestamp()), math.ceil(instant.timestamp())
    old_offset = _offset_seconds(before, tz)
    while high - low > 1:  # the first second whose offset is the new one
        middle = (low + high) // 2
        if _offset_seconds(datetime.fromtimestamp(middle, UTC), tz) == old_offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def quiet_window_end(window: str, tz: tzinfo, now: datetime) -> datetime | None:
    """When the quiet window `now` is in ends (UTC), or None when `now` is outside it.

    `window` is "HH:MM-HH:MM" in local time, start inclusive, end exclusive; a start after the end crosses
    midnight (22:00-07:00 covers 22:00 to 06:59 the next morning).
    """
    start, end = parse_quiet_window(window)
    local = _aware(now, "now").astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= clock < end, local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    finish = resolve_local(end_day, end, tz)
    now_utc = now.astimezone(UTC)
    if finish <= now_utc:
        # Only in the repeated hour of a fall-back, past the end's first occurrence: take its second one.
        finish = datetime.combine(end_day, end, tzinfo=tz).replace(fold=1).astimezone(UTC)
    return finish if finish > now_utc else None


def quiet_hours_end(preferences: Preferences, now: datetime) -> datetime | None:
    """The end of the user's quiet hours if `now` is inside them, else None (also when they have none)."""
    if preferences.quiet_hours is None:
        return None
    return quiet_window_end(preferences.quiet_hours.window, preferences.zone, now)


def digest_cadence(preferences: Preferences) -> DigestCadence:
    """The cadence the digest really runs at. Quiet hours that send to the digest need a digest to send to:
    with the digest off, they use the hourly one (whose boundaries inside quiet hours move to the window's
    end, so the night's notifications arrive together when quiet hours end)."""
    cadence = preferences.digest.cadence if preferences.digest is not None else DigestCadence.off
    if cadence is DigestCadence.off and preferences.quiet_hours is not None:
        if preferences.quiet_hours.action is QuietHoursAction.digest:
            return DigestCadence.hourly
    return cadence


def _next_local_top_of_hour(after: datetime, tz: tzinfo) -> datetime:
    """The first instant strictly after `after` when the local clock reads HH:00 (at :30 UTC in Asia/Kolkata)."""
    candidate = after.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
    for _ in range(_HOURLY_SEARCH_MINUTES):
        local = candidate.astimezone(tz)
        if local.minute == 0 and local.second == 0:
            return candidate
        candidate += _MINUTE
    return after.astimezone(UTC) + timedelta(hours=1)  # a zone with second-level offsets: keep an hourly rhythm


def _next_local_hour(after: datetime, tz: tzinfo, hour: int) -> datetime:
    """The first occurrence of local `hour`:00 strictly after `after`; once a day, even on fall-back days."""
    after_utc = after.astimezone(UTC)
    day = after_utc.astimezone(tz).date()
    while True:
        boundary = resolve_local(day, time(hour), tz)
        if boundary > after_utc:
            return boundary
        day += timedelta(days=1)


def next_digest_at(preferences: Preferences, after: datetime, period_seconds: float | None = None) -> datetime | None:
    """The first digest boundary strictly after `after` (UTC): the top of the next local hour (hourly), the user's
    chosen local hour (daily), or the next multiple of `period_seconds` since the epoch (tests); None when the
    digest is off.

    A local boundary inside quiet hours moves to the window's end: a digest is not worth waking anyone for.
    `period_seconds` boundaries are left exactly where they fall, for tests that need them on time.
    """
    after = _aware(after, "after")
    cadence = digest_cadence(preferences)
    if cadence is DigestCadence.off:
        return None
    if period_seconds is not None:
        if not period_seconds > 0:
            raise ValueError("period_seconds must be positive")
        steps = math.floor(after.timestamp() / period_seconds) + 1
        boundary = datetime.fromtimestamp(steps * period_seconds, UTC)
        return boundary if boundary > after else boundary + timedelta(seconds=period_seconds)  # float rounding
    tz = preferences.zone
    if cadence is DigestCadence.hourly:
        boundary = _next_local_top_of_hour(after, tz)
    else:
        assert preferences.digest is not None  # daily is only ever set explicitly
        boundary = _next_local_hour(after, tz, preferences.digest.local_hour)
    return quiet_hours_end(preferences, boundary) or boundary
