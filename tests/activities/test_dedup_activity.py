"""check_duplicate, the real activity on a real SQLite store: a retry is never its own duplicate."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.dedup import DedupActivities
from herald.adapters.store import Store
from herald.models import DedupCheck, DedupResult


async def run(activities: DedupActivities, check: DedupCheck) -> DedupResult:
    result: DedupResult = await ActivityEnvironment().run(activities.check_duplicate, check)
    return result


async def test_retry_of_the_same_check_is_not_a_duplicate(store: Store) -> None:
    activities = DedupActivities(store)
    check = DedupCheck(key="content-key", notification_id="n1", window_seconds=300)
    assert await run(activities, check) == DedupResult(duplicate=False, owner_notification_id="n1")
    assert await run(activities, check) == DedupResult(duplicate=False, owner_notification_id="n1")


async def test_other_notification_with_the_same_key_is_a_duplicate(store: Store) -> None:
    activities = DedupActivities(store)
    await run(activities, DedupCheck(key="content-key", notification_id="n1", window_seconds=300))
    result = await run(activities, DedupCheck(key="content-key", notification_id="n2", window_seconds=300))
    assert result == DedupResult(duplicate=True, owner_notification_id="n1")
    # the first one, retried after the second arrived, still owns the key
    again = await run(activities, DedupCheck(key="content-key", notification_id="n1", window_seconds=300))
    assert again == DedupResult(duplicate=False, owner_notification_id="n1")


async def test_other_key_is_not_a_duplicate(store: Store) -> None:
    activities = DedupActivities(store)
    await run(activities, DedupCheck(key="key-a", notification_id="n1", window_seconds=300))
    result = await run(activities, DedupCheck(key="key-b", notification_id="n2", window_seconds=300))
    assert result == DedupResult(duplicate=False, owner_notification_id="n2")


async def test_zero_window_never_suppresses(store: Store) -> None:
    activities = DedupActivities(store)
    await run(activities, DedupCheck(key="k", notification_id="n1", window_seconds=0))
    result = await run(activities, DedupCheck(key="k", notification_id="n2", window_seconds=0))
    assert result == DedupResult(duplicate=False, owner_notification_id="n2")
