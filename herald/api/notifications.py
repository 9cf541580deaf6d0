"""The notifications routes: start one, read one, list the recorded ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel
from temporalio.service import RPCError

from herald.adapters.logs import bind
from herald.adapters.metrics import NOTIFICATIONS_ACCEPTED, RESOLVES
from herald.api.auth import Caller, CallerDep, authorize
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody, temporal_unavailable
from herald.api.quota import RATE_LIMITED, spend_for_notification
from herald.api.views import (
    InvalidCursor,
    NotificationPage,
    NotificationView,
    TemporalUnavailable,
    check_visible,
    list_notifications,
    listing_scope,
    load_notification,
    notification_not_found,
)
from herald.domain.answers import check_respond_by
from herald.domain.quorum import quorum_problem
from herald.models import (
    ID_REGEX,
    AgentNotification,
    NotificationStatus,
    Priority,
    ResolveBody,
    ResolveResult,
    utcnow,
)
from herald.models.common import Timestamp
from herald.services.gateway import NotificationIdTaken, ResolveTimeout

NotificationId = Annotated[str, Path(pattern=ID_REGEX, description="the notification's id")]
LIST_LIMIT_MAX = 200

router = APIRouter()


class NotificationAccepted(BaseModel):
    notification_id: str
    workflow_id: str
    status_url: str


auth_errors: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


@router.post(
    "/v1/notifications",
    status_code=202,
    response_model=NotificationAccepted,
    tags=["notifications"],
    responses={**auth_errors, 409: {"model": ErrorBody}, **RATE_LIMITED},
)
async def send_notification(notification: AgentNotification, caller: CallerDep, deps: Deps) -> NotificationAccepted:
    """Start a notification (an agent key sends as its own agent only). The same notification_id again is a no-op;
    another agent's notification_id is a 409. An agent key over its quota gets a 429 with Retry-After and nothing
    starts; a retry of a notification_id already accepted is answered as the first time, quota or not."""
    authorize(caller, agents=[notification.agent_id], field="agent_id")
    bind(notification_id=notification.notification_id)
    try:
        check_respond_by(notification, utcnow())
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"respond_by: {exc}", "respond_by") from None
    if notification.group is not None:
        members = await deps.store.groups.members(notification.group)
        if not members:
            raise ApiError(422, "invalid_request", f"group: no group {notification.group}", "group")
        problem = quorum_problem(notification.quorum, len(members))
        if problem is not None:
            raise ApiError(422, "invalid_request", f"quorum: {problem}", "quorum")
    await spend_for_notification(deps, caller, notification)
    herald = await deps.client()
    try:
        handle = await herald.notify(notification)
    except NotificationIdTaken as exc:
        raise ApiError(409, "notification_id_taken", str(exc), "notification_id") from None
    except RPCError as exc:
        raise ApiError(503, "temporal_unavailable", "Temporal refused the start; retry with the same id") from exc
    NOTIFICATIONS_ACCEPTED.inc()
    return NotificationAccepted(
        notification_id=handle.notification_id,
        workflow_id=handle.workflow_id,
        status_url=f"/v1/notifications/{handle.notification_id}",
    )


def resolver(caller: Caller, agent_id: str) -> str:
    """Who a resolve says resolved: `agent:<id>`, or `admin` for the admin key (`api` with auth off)."""
    if caller.kind == "admin":
        return "admin"
    if caller.kind == "agent":
        return f"agent:{agent_id}"
    return "api"


@router.post(
    "/v1/notifications/resolve",
    response_model=ResolveResult,
    tags=["notifications"],
    responses={**auth_errors, 503: {"model": ErrorBody}},
)
async def resolve_notifications(body: ResolveBody, caller: CallerDep, deps: Deps) -> ResolveResult:
    """Resolve every open notification `agent_id` sent with `dedup_key`: each ends `resolved`, its pending retries,
    quiet-hours hold, escalation and answer wait stop, and what was delivered is told (the inbox, the WebSocket,
    Web Push replaced, chats edited, email and SMS as `notify_resolved` allows). Open includes delivered and not yet
    resolved: a notification whose workflow completed `delivered`, `partially_delivered`, `confirmed` or
    `unconfirmed` is resolved by its own `resolve/<notification_id>` workflow. `resolved` lists both kinds.
    An agent key resolves its own agent's only; the admin any. Nothing open is a no-op: `resolved` is empty and
    `message` says so."""
    authorize(caller, agents=[body.agent_id], field="agent_id")
    herald = await deps.client()
    try:
        result = await herald.resolve(body.agent_id, body.dedup_key, by=resolver(caller, body.agent_id))
    except ResolveTimeout as exc:
        raise temporal_unavailable(str(exc)) from None
    except RPCError as exc:
        raise temporal_unavailable("Temporal did not answer; retry") from exc
    RESOLVES.labels(result="resolved" if result.resolved else "nothing_open").inc()
    return result


@router.get(
    "/v1/notifications/{notification_id}",
    response_model=NotificationView,
    tags=["notifications"],
    responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)
async def get_notification(notification_id: NotificationId, caller: CallerDep, deps: Deps) -> NotificationView:
    """Status, per-channel state and every delivery attempt: for its user, its sending agent, or the admin.
    Anyone else gets the 404 an unknown id gets, so status calls can't probe which ids exist."""
    bind(notification_id=notification_id)
    try:
        view = await load_notification(deps.store, await deps.client(), notification_id)
    except TemporalUnavailable as exc:
        raise ApiError(503, "temporal_unavailable", str(exc)) from exc
    if view is None:
        raise notification_not_found(notification_id)
    check_visible(caller, notification_id, view.user_id, view.agent_id)
    return view


@router.get(
    "/v1/notifications",
    response_model=NotificationPage,
    tags=["notifications"],
    responses=auth_errors,
)
async def list_recorded_notifications(
    caller: CallerDep,
    deps: Deps,
    user_id: Annotated[
        str | None, Query(pattern=ID_REGEX, description="a user token lists its own user only (the default)")
    ] = None,
    agent_id: Annotated[
        str | None, Query(pattern=ID_REGEX, description="an agent key lists its own agent only (the default)")
    ] = None,
    status: NotificationStatus | None = None,
    priority: Priority | None = None,
    since: Annotated[Timestamp | None, Query(description="recorded at or after this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=1024, description="next_cursor of the previous page")] = None,
) -> NotificationPage:
    """Finished notifications, newest first, from the audit record (no attempts: GET one for those).

    The admin sees all; a user token only its own user's (no `user_id` means its own; another's is a 403);
    an agent key only what its agent sent, by `agent_id` likewise. Page with `next_cursor`.
    """
    user_id, agent_id = listing_scope(caller, user_id, agent_id)
    try:
        return await list_notifications(
            deps.store,
            user_id=user_id,
            agent_id=agent_id,
            status=status,
            priority=priority,
            since=since,
            cursor=cursor,
            limit=limit,
        )
    except InvalidCursor as exc:
        raise ApiError(422, "invalid_request", f"cursor: {exc}", "cursor") from None
