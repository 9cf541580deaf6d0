"""`/v1/heartbeats`: an agent promises to check in every so often; a missed check-in notifies a person once.

Each heartbeat is the workflow `heartbeat/<agent_id>/<name>` (workflows/heartbeat.py): no table. PUT and ping
are signals, which Temporal keeps while no worker runs; GET asks each heartbeat's workflow, which needs a worker.
Setting one takes the admin key or the agent key of its `agent_id`; a ping, a list and a delete act for the agent
key's own agent (the admin names one with `?agent_id=`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from temporalio.service import RPCError

from herald.adapters.metrics import HEARTBEAT_CHANGES, HEARTBEAT_PINGS
from herald.api.auth import Caller, CallerDep, authorize
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody, temporal_unavailable
from herald.models import (
    HEARTBEAT_NAME_REGEX,
    ID_REGEX,
    HeartbeatInput,
    HeartbeatList,
    HeartbeatPinged,
    HeartbeatSpec,
)
from herald.services.gateway import HeartbeatNotFound


async def only_known_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 naming it: `?agentid=` (a typo) must not list every
    agent's heartbeats."""
    route = request.scope.get("route")
    known = {param.alias for param in route.dependant.query_params} if isinstance(route, APIRoute) else set()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        taken = ", ".join(sorted(known)) or "none"
        raise ApiError(
            422, "invalid_request", f"not a query parameter of this route (it takes: {taken})", unknown[0][:64]
        )


router = APIRouter(
    tags=["heartbeats"],
    dependencies=[Depends(only_known_query)],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)

HeartbeatName = Annotated[
    str, Path(pattern=HEARTBEAT_NAME_REGEX, description="the heartbeat's name: 1-64 of a-z, 0-9, - and _")
]
AgentQuery = Annotated[
    str | None,
    Query(pattern=ID_REGEX, description="the heartbeat's agent: an agent key's own by default; the admin names one"),
]


def heartbeat_agent(caller: Caller, agent_id: str | None) -> str:
    """The agent a ping or delete acts for: an agent key's own (naming another is a 403); the admin's must be named."""
    if caller.kind == "agent":
        authorize(caller, agents=[agent_id or caller.subject or ""], field="agent_id")
        assert caller.subject is not None
        return caller.subject
    authorize(caller, agents=[agent_id] if agent_id else [], field="agent_id")
    if agent_id is None:
        raise ApiError(422, "invalid_request", "agent_id: is required (an agent key names its own agent)", "agent_id")
    return agent_id


def not_found(exc: HeartbeatNotFound) -> ApiError:
    return ApiError(404, "not_found", str(exc), "name")


@router.put("/v1/heartbeats/{name}", response_model=HeartbeatSpec, responses={422: {"model": ErrorBody}})
async def put_heartbeat(name: HeartbeatName, body: HeartbeatInput, caller: CallerDep, deps: Deps) -> HeartbeatSpec:
    """Create or change the heartbeat `name` of `agent_id` (its agent key or the admin). The agent then checks in
    at least every `every_seconds` (plus `grace_seconds`); a miss makes it `missed` and sends `notify.user_id` one
    notification, "<name> missed its check-in" (metadata `{"heartbeat": name, "event": "missed"}`), and the next
    check-in makes it `up` again with "<name> checked in again" (`"event": "resumed"`). A new heartbeat counts from
    now; a changed one from its last check-in."""
    authorize(caller, agents=[body.agent_id], field="agent_id")
    spec = HeartbeatSpec.model_validate({**body.model_dump(), "name": name})
    try:
        await (await deps.client()).set_heartbeat(spec)
    except RPCError as exc:
        raise temporal_unavailable("Temporal did not take the heartbeat; send it again") from exc
    HEARTBEAT_CHANGES.labels("set").inc()
    return spec


@router.post(
    "/v1/heartbeats/{name}/ping",
    status_code=202,
    response_model=HeartbeatPinged,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def ping_heartbeat(
    name: HeartbeatName, caller: CallerDep, deps: Deps, agent_id: AgentQuery = None
) -> HeartbeatPinged:
    """Check in. Temporal keeps the ping while no worker runs, so a ping sent in time counts as in time."""
    agent = heartbeat_agent(caller, agent_id)
    try:
        pinged = await (await deps.client()).ping(agent, name)
    except HeartbeatNotFound as exc:
        raise not_found(exc) from None
    except RPCError as exc:
        raise temporal_unavailable("Temporal did not take the ping; send it again") from exc
    HEARTBEAT_PINGS.inc()
    return pinged


@router.get("/v1/heartbeats", response_model=HeartbeatList, responses={422: {"model": ErrorBody}})
async def list_heartbeats(caller: CallerDep, deps: Deps, agent_id: AgentQuery = None) -> HeartbeatList:
    """The watched heartbeats, by agent and name, each with its state (`up` or `missed`), last check-in and
    deadline: the admin's all of them (or `agent_id`'s), an agent key its own agent's. Each is read from its
    workflow, so this needs a running worker (503 otherwise)."""
    if caller.kind == "agent":
        authorize(caller, agents=[agent_id or caller.subject or ""], field="agent_id")
        agent_id = caller.subject
    else:
        authorize(caller, agents=[agent_id] if agent_id else [], field="agent_id")
    try:
        return HeartbeatList(heartbeats=await (await deps.client()).heartbeats(agent_id))
    except RPCError as exc:
        raise temporal_unavailable("Temporal (or a worker) did not answer; retry") from exc


@router.delete(
    "/v1/heartbeats/{name}",
    status_code=204,
    response_class=Response,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def delete_heartbeat(name: HeartbeatName, caller: CallerDep, deps: Deps, agent_id: AgentQuery = None) -> Response:
    """Stop watching the heartbeat: its workflow ends and nothing more is sent. PUT it again to start over."""
    agent = heartbeat_agent(caller, agent_id)
    try:
        await (await deps.client()).delete_heartbeat(agent, name)
    except HeartbeatNotFound as exc:
        raise not_found(exc) from None
    except RPCError as exc:
        raise temporal_unavailable("Temporal did not take the stop; send it again") from exc
    HEARTBEAT_CHANGES.labels("delete").inc()
    return Response(status_code=204)
