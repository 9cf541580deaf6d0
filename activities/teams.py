"""group_members: a group notification's members, read once (herald/adapters/store/groups.py); the result is what
replays, so a group changed later does not change a notification already sent to it."""

from __future__ import annotations

from temporalio import activity

from herald.adapters.store import Store
from herald.models import GroupMembers, GroupMembersQuery


class TeamActivities:
    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name="group_members")
    async def group_members(self, query: GroupMembersQuery) -> GroupMembers:
        return GroupMembers(members=await self._store.groups.members(query.name))
