"""A step's targets resolved to the people they name at one instant: `user:<id>` itself, `schedule:<name>` whoever
is on call then (herald.domain.oncall.on_call), `group:<name>` its members (store.groups)."""

from __future__ import annotations

from datetime import datetime

from herald.adapters.store import Store
from herald.domain.oncall import on_call, parse_target
from herald.models.oncall import ResolvedTargets


async def resolve_targets(store: Store, targets: list[str], at: datetime) -> ResolvedTargets:
    """The user ids `targets` name at `at`, in order, each once; a target naming nobody (an unknown schedule or
    group, nobody on call, an empty group) is listed in `unresolved`."""
    parsed = [parse_target(t) for t in targets]
    schedules = await store.oncall.get_schedules(sorted({t.name for t in parsed if t.kind == "schedule"}))
    users: list[str] = []
    unresolved: list[str] = []
    for target, text in zip(parsed, targets, strict=True):
        found: list[str] = []
        if target.kind == "user":
            found = [target.name]
        elif target.kind == "schedule" and target.name in schedules:
            who = on_call(schedules[target.name], at).user_id
            found = [who] if who is not None else []
        elif target.kind == "group":
            found = await store.groups.members(target.name) or []
        if not found:
            unresolved.append(text)
        users.extend(u for u in found if u not in users)
    return ResolvedTargets(user_ids=users, unresolved=unresolved)
