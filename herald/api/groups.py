"""`/v1/groups`: groups (teams), a name for a list of users, which a notification may address (`group`) instead of
one `user_id`. The admin key only. A PUT saves the members whole (in the order given, each once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from herald.api.auth import AdminOnly
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody
from herald.models import ID_REGEX, Group, GroupInput, utcnow

GroupName = Annotated[str, Path(pattern=ID_REGEX, description="the group's name")]

router = APIRouter(
    tags=["groups"], dependencies=[AdminOnly], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}}
)


class GroupList(BaseModel):
    groups: list[Group]


def not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"no group {name}", "name")


@router.put("/v1/groups/{name}", response_model=Group, responses={422: {"model": ErrorBody}})
async def put_group(name: GroupName, body: GroupInput, deps: Deps) -> Group:
    """Save the group's members (a new group, or new members for an existing one). Notifications already sent to
    the group keep the members they were sent to."""
    now = utcnow()
    return await deps.store.groups.put(Group(name=name, members=body.members, created_at=now, updated_at=now))


@router.get("/v1/groups", response_model=GroupList)
async def list_groups(deps: Deps) -> GroupList:
    """Every group, by name, with its members."""
    return GroupList(groups=await deps.store.groups.list())


@router.get("/v1/groups/{name}", response_model=Group, responses={404: {"model": ErrorBody}})
async def get_group(name: GroupName, deps: Deps) -> Group:
    found = await deps.store.groups.get(name)
    if found is None:
        raise not_found(name)
    return found


@router.delete("/v1/groups/{name}", status_code=204, responses={404: {"model": ErrorBody}})
async def delete_group(name: GroupName, deps: Deps) -> Response:
    """Delete the group: a notification to it is refused from then on (422 naming `group`)."""
    if not await deps.store.groups.delete(name):
        raise not_found(name)
    return Response(status_code=204)
