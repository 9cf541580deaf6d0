"""Wall-clock schedules in a user's time zone: when quiet hours end, when the next digest goes out.

Pure functions over aware datetimes (UTC in, UTC out); the zone arithmetic handles midnight and DST.
(Interface fixed; the implementation is being written.)
"""

from __future__ import annotations

from datetime import datetime

from herald.models import Preferences


def next_digest_at(preferences: Preferences, after: datetime, period_seconds: float | None = None) -> datetime | None:
    """The first digest boundary strictly after `after`: the top of the next local hour (hourly), the user's
    chosen local hour (daily), or every `period_seconds` (tests); None when the digest is off."""
    raise NotImplementedError
