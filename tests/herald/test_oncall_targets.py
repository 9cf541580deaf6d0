"""herald.services.oncall.resolve_targets on the real store: a step's targets to the people they name at an instant."""

from __future__ import annotations

from datetime import UTC, datetime

from herald.adapters.store import Store
from herald.models import Group, utcnow
from herald.models.oncall import Schedule
from herald.services.oncall import resolve_targets


async def test_users_schedules_and_groups_resolve_in_order_once_each_and_unknowns_are_listed(store: Store) -> None:
    now = utcnow()
    await store.oncall.put_schedule(
        Schedule(
            name="primary",
            updated_at=now,
            time_zone="Europe/Berlin",
            rotation={"members": ["ada", "bob"], "shift_hours": 24, "starts_at": "2026-03-27T09:00:00"},
        )
    )
    await store.groups.put(Group(name="dba", members=["cy", "ada", "dee"], created_at=now, updated_at=now))
    # 06:59 UTC on Mar 29 is 08:59 CEST: still bob's shift, which began at 09:00 CET the day before.
    before = datetime(2026, 3, 29, 6, 59, tzinfo=UTC)
    found = await resolve_targets(
        store, ["schedule:primary", "group:dba", "user:bob", "schedule:gone", "group:none"], before
    )
    assert found.user_ids == ["bob", "cy", "ada", "dee"]
    assert found.unresolved == ["schedule:gone", "group:none"]
    after = await resolve_targets(store, ["schedule:primary"], datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
    assert after.user_ids == ["ada"]
    early = await resolve_targets(store, ["schedule:primary"], datetime(2026, 3, 1, tzinfo=UTC))
    assert early.user_ids == [] and early.unresolved == ["schedule:primary"]
