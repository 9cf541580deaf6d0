"""Groups (teams): a name for a list of users. A notification may address a group instead of one user
(`AgentNotification.group`): it fans out as one notification per member, each with that member's own preferences,
and a question to a group may need more than one answer (`Quorum`, herald/domain/quorum.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.models.common import Identifier, Timestamp

GROUP_MEMBERS_MAX = 100


class GroupInput(BaseModel):
    """A group as `PUT /v1/groups/{name}` takes it: its members, by user id, in the order given (each once)."""

    model_config = ConfigDict(extra="forbid")

    members: list[Identifier] = Field(
        min_length=1, max_length=GROUP_MEMBERS_MAX, description="the members' user ids, each once"
    )

    @field_validator("members")
    @classmethod
    def _distinct(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError("must name each member once")
        return members


class Group(BaseModel):
    """A group as the store keeps it."""

    model_config = ConfigDict(extra="forbid")

    name: Identifier
    members: list[Identifier] = Field(min_length=1, max_length=GROUP_MEMBERS_MAX)
    created_at: Timestamp
    updated_at: Timestamp
