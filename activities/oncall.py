"""Escalation's store steps: read a policy, and resolve a step's targets to the people they name at that moment
(herald/services/oncall.py). Each result is recorded in the history, so a replay notifies the same people."""

from __future__ import annotations

from temporalio import activity

from herald.adapters.store import Store
from herald.models.oncall import PolicyFound, PolicyQuery, ResolvedTargets, TargetQuery
from herald.services.oncall import resolve_targets


class OnCallActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="get_escalation_policy")
    async def get_policy(self, query: PolicyQuery) -> PolicyFound:
        return PolicyFound(policy=await self._store.oncall.get_policy(query.name))

    @activity.defn(name="resolve_targets")
    async def resolve_targets(self, query: TargetQuery) -> ResolvedTargets:
        return await resolve_targets(self._store, query.targets, query.at)
