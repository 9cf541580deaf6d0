"""`/v1/escalation-policies` and `/v1/schedules`: save, read, list and delete escalation policies and on-call
schedules (herald/models/oncall.py), and ask a schedule who is on call (`/v1/schedules/{name}/on-call`).

They are the team's settings: the admin key saves and deletes them; any caller reads them. A PUT saves one whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from herald.api.auth import AuthError, Caller, CallerDep, access_problem
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody
from herald.domain.oncall import on_call
from herald.models import ID_REGEX, utcnow
from herald.models.oncall import EscalationPolicy, EscalationPolicyInput, OnCall, Schedule, ScheduleInput

Name = Annotated[str, Path(pattern=ID_REGEX, description="its name")]

router = APIRouter(tags=["on-call"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class PolicyList(BaseModel):
    policies: list[EscalationPolicy]


class ScheduleList(BaseModel):
    schedules: list[Schedule]


def _admin(caller: Caller) -> None:
    if access_problem(caller) is not None:
        raise AuthError(403, "forbidden", "escalation policies and schedules are saved with the admin key", None)


def _missing(what: str, name: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {name}", "name")


@router.put(
    "/v1/escalation-policies/{name}",
    response_model=EscalationPolicy,
    responses={422: {"model": ErrorBody}},
)
async def put_policy(name: Name, body: EscalationPolicyInput, caller: CallerDep, deps: Deps) -> EscalationPolicy:
    """Save the policy whole: `steps` (each its `targets` and `ack_within_seconds`) and `repeat` (0-3). A notification
    or rule naming it as `escalation_policy` notifies step 1's targets, then each next step's while nobody acks."""
    _admin(caller)
    policy = EscalationPolicy(name=name, updated_at=utcnow(), **body.model_dump())
    await deps.store.oncall.put_policy(policy)
    return policy


@router.get("/v1/escalation-policies", response_model=PolicyList)
async def list_policies(caller: CallerDep, deps: Deps) -> PolicyList:
    del caller  # any caller with a token reads them
    return PolicyList(policies=await deps.store.oncall.list_policies())


@router.get("/v1/escalation-policies/{name}", response_model=EscalationPolicy, responses={404: {"model": ErrorBody}})
async def get_policy(name: Name, caller: CallerDep, deps: Deps) -> EscalationPolicy:
    del caller  # any caller with a token reads them
    found = await deps.store.oncall.get_policy(name)
    if found is None:
        raise _missing("escalation policy", name)
    return found


@router.delete("/v1/escalation-policies/{name}", status_code=204, responses={404: {"model": ErrorBody}})
async def delete_policy(name: Name, caller: CallerDep, deps: Deps) -> Response:
    """Delete the policy: a notification naming it later escalates to nobody (its outcome says so); one escalating
    already keeps the policy it read."""
    _admin(caller)
    if not await deps.store.oncall.delete_policy(name):
        raise _missing("escalation policy", name)
    return Response(status_code=204)


@router.put("/v1/schedules/{name}", response_model=Schedule, responses={422: {"model": ErrorBody}})
async def put_schedule(name: Name, body: ScheduleInput, caller: CallerDep, deps: Deps) -> Schedule:
    """Save the schedule whole: `time_zone`, `rotation` (`members` in turn, `shift_hours`, `starts_at`, counted on the
    schedule's wall clock) and `overrides` (who is on call from `starts_at` to `ends_at`, over the rotation)."""
    _admin(caller)
    schedule = Schedule(name=name, updated_at=utcnow(), **body.model_dump())
    await deps.store.oncall.put_schedule(schedule)
    return schedule


@router.get("/v1/schedules", response_model=ScheduleList)
async def list_schedules(caller: CallerDep, deps: Deps) -> ScheduleList:
    del caller  # any caller with a token reads them
    return ScheduleList(schedules=await deps.store.oncall.list_schedules())


@router.get("/v1/schedules/{name}", response_model=Schedule, responses={404: {"model": ErrorBody}})
async def get_schedule(name: Name, caller: CallerDep, deps: Deps) -> Schedule:
    del caller  # any caller with a token reads them
    found = await deps.store.oncall.get_schedule(name)
    if found is None:
        raise _missing("schedule", name)
    return found


@router.get("/v1/schedules/{name}/on-call", response_model=OnCall, responses={404: {"model": ErrorBody}})
async def who_is_on_call(
    name: Name,
    caller: CallerDep,
    deps: Deps,
    at: Annotated[datetime | None, Query(description="the instant asked about (default now); with an offset")] = None,
) -> OnCall:
    """Who is on call on the schedule at `at` (now by default): an override's user, else the rotation's."""
    del caller  # any caller with a token reads them
    if at is not None and at.tzinfo is None:
        raise ApiError(422, "invalid_request", "at must carry a UTC offset, e.g. 2026-03-29T07:00:00Z", "at")
    found = await deps.store.oncall.get_schedule(name)
    if found is None:
        raise _missing("schedule", name)
    when = at or utcnow()
    who = on_call(found, when)
    return OnCall(schedule=name, at=when, user_id=who.user_id, override=who.override)


@router.delete("/v1/schedules/{name}", status_code=204, responses={404: {"model": ErrorBody}})
async def delete_schedule(name: Name, caller: CallerDep, deps: Deps) -> Response:
    """Delete the schedule: a step naming it later finds nobody on call (its outcome lists it unresolved)."""
    _admin(caller)
    if not await deps.store.oncall.delete_schedule(name):
        raise _missing("schedule", name)
    return Response(status_code=204)
