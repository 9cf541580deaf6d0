"""`/v1/silences`: make, list and expire silences (herald/domain/silences.py decides what they hold).

The admin silences anything; an agent key only its own agent (`matchers.agent_id` must name it); a user token only
its own notifications (`matchers.user_id`). Reading reaches the silences the caller could have made (those naming its
agent, or its user); anyone else's answers 404, as an unknown id does. Expiring takes the silence's maker or the admin:
an agent can't lift the silence a person (or the admin) put on it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from herald.api.auth import AuthError, Caller, CallerDep, access_problem
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody
from herald.domain.silences import SilenceProblem, new_silence, state_of
from herald.models import ID_REGEX, Silence, SilenceInput, SilenceView, utcnow

SilenceId = Annotated[str, Path(pattern=ID_REGEX, description="the silence's id")]

router = APIRouter(tags=["silences"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class SilenceList(BaseModel):
    silences: list[SilenceView]


def created_by(caller: Caller) -> str:
    return caller.kind if caller.subject is None else f"{caller.kind}:{caller.subject}"


def creation_problem(caller: Caller, body: SilenceInput) -> AuthError | None:
    """An agent key silences its own agent only, a user token its own notifications only."""
    m = body.matchers
    if caller.kind == "agent":
        if m.agent_id is None:
            return own_only("an agent key silences its own agent only", "agent_id", caller)
        return access_problem(caller, agents=[m.agent_id], field="matchers.agent_id")
    if caller.kind == "user":
        if m.user_id is None:
            return own_only("a user token silences its own notifications only", "user_id", caller)
        return access_problem(caller, users=[m.user_id], field="matchers.user_id")
    return access_problem(caller)


def own_only(what: str, name: str, caller: Caller) -> AuthError:
    return AuthError(403, "forbidden", f"{what}: set matchers.{name} to {caller.subject}", f"matchers.{name}")


def visible(caller: Caller, silence: Silence) -> bool:
    """Whether the caller could have made this silence (and so may see and expire it)."""
    if caller.kind in ("anyone", "admin"):
        return True
    own = silence.matchers.agent_id if caller.kind == "agent" else silence.matchers.user_id
    return own is not None and own == caller.subject


def view(silence: Silence) -> SilenceView:
    return SilenceView(**silence.model_dump(), state=state_of(silence, utcnow()))


def silence_not_found(silence_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no silence {silence_id}", "silence_id")


@router.post("/v1/silences", status_code=201, response_model=SilenceView)
async def create_silence(body: SilenceInput, caller: CallerDep, deps: Deps) -> SilenceView:
    """Silence the notifications the matchers name from `starts_at` (default now) until `ends_at`: they end
    `silenced`, logged and not delivered. Critical ones only with `max_priority: critical`."""
    problem = creation_problem(caller, body)
    if problem is not None:
        raise problem
    try:
        silence = new_silence(body, created_by(caller), utcnow())
    except SilenceProblem as exc:
        raise ApiError(422, "invalid_request", str(exc), exc.field) from None
    await deps.store.silences.put_silence(silence)
    return view(silence)


LIST_PARAMETERS = frozenset({"expired", "limit"})


async def known_parameters(request: Request) -> None:
    """A parameter the listing doesn't take is refused by name, not ignored (`?expird=true` would list less)."""
    unknown = sorted(set(request.query_params) - LIST_PARAMETERS)
    if unknown:
        raise ApiError(422, "invalid_request", f"{unknown[0]}: is not a known parameter", unknown[0])


@router.get("/v1/silences", response_model=SilenceList, dependencies=[Depends(known_parameters)])
async def list_silences(
    caller: CallerDep,
    deps: Deps,
    expired: Annotated[bool, Query(description="also list silences that have ended")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SilenceList:
    """Silences newest first, pending and active ones (ended ones too with `expired=true`): all for the admin, an
    agent key's for its agent, a user token's for its user."""
    scope: dict[str, str | None] = {}
    if caller.kind == "agent":
        scope["agent_id"] = caller.subject
    elif caller.kind == "user":
        scope["user_id"] = caller.subject
    found = await deps.store.silences.list_silences(utcnow(), include_expired=expired, limit=limit, **scope)
    return SilenceList(silences=[view(s) for s in found])


@router.get("/v1/silences/{silence_id}", response_model=SilenceView, responses={404: {"model": ErrorBody}})
async def get_silence(silence_id: SilenceId, caller: CallerDep, deps: Deps) -> SilenceView:
    silence = await deps.store.silences.get_silence(silence_id)
    if silence is None or not visible(caller, silence):
        raise silence_not_found(silence_id)
    return view(silence)


@router.delete("/v1/silences/{silence_id}", response_model=SilenceView, responses={404: {"model": ErrorBody}})
async def expire_silence(silence_id: SilenceId, caller: CallerDep, deps: Deps) -> SilenceView:
    """Expire the silence now (`ends_at` = now): notifications from then on are delivered. Expiring it again
    changes nothing and answers the same; an unknown id (or one the caller can't read) is a 404, and one the caller
    reads but did not make a 403 (its maker or the admin expires it)."""
    silence = await deps.store.silences.get_silence(silence_id)
    if silence is None or not visible(caller, silence):
        raise silence_not_found(silence_id)
    if caller.kind not in ("anyone", "admin") and silence.created_by != created_by(caller):
        raise AuthError(
            403,
            "forbidden",
            f"only its maker ({silence.created_by}) or the admin key expires this silence",
            "silence_id",
        )
    expired = await deps.store.silences.expire_silence(silence_id, utcnow())
    if expired is None:
        raise silence_not_found(silence_id)
    return view(expired)
