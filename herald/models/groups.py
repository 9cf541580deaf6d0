"""Groups (teams): a name for a list of users. A notification may address a group instead of one user
(`AgentNotification.group`): it fans out as one notification per member, each with that member's own preferences,
and a question to a group may need more than one answer (`Quorum`, herald/domain/quorum.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.models.answers import ActionId, Answer
from herald.models.common import ChannelName, Identifier, JsonInt, NotificationStatus, Timestamp

GROUP_MEMBERS_MAX = 100


class GroupInput(BaseModel):
    """A group as `PUT /v1/groups/{name}` takes it: its members, by user id, in the order given (each once)."""

    model_config = ConfigDict(extra="forbid")

    members: list[Identifier] = Field(
        min_length=1,
        max_length=GROUP_MEMBERS_MAX,
        description="the members' user ids, each once",
        json_schema_extra={"uniqueItems": True},
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


class QuorumCount(BaseModel):
    """A question to a group decided by `count` distinct people choosing `action`; any other action by anyone
    decides at once (a deny vetoes)."""

    model_config = ConfigDict(extra="forbid")

    action: ActionId = Field(description="the action that needs `count` people (one of the question's actions)")
    count: JsonInt = Field(ge=1, le=GROUP_MEMBERS_MAX, description="how many distinct people must choose it")


# "first" (the default): the first answer decides.
Quorum = Literal["first"] | QuorumCount


class GroupMembersQuery(BaseModel):
    """The store step of a group notification: its group's members (None: no such group)."""

    name: str


class GroupMembers(BaseModel):
    members: list[str] | None = None


class MemberAnswer(BaseModel):
    """A member's answer, signalled by the member's notification to the group's (`member_answer`)."""

    notification_id: str  # the member's notification
    answer: Answer


class GroupDecision(BaseModel):
    """What decided a question to a group: the action, who chose it (in the order they did), and the words every
    member's message is updated with ("Approved by ada and grace"). Signalled to each member's notification."""

    action_id: str
    by: list[str]
    text: str


class MemberOutcome(BaseModel):
    """One member's part of a group notification's outcome."""

    notification_id: str
    status: NotificationStatus
    channels: list[ChannelName] = Field(default_factory=list, description="the channels that took it")
    answer: Answer | None = None
