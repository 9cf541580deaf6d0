"""What the browser page needs beyond the public surface: who a token is, read marks, and test notifications.

`GET /v1/me` names the token's user, so a page opened from a login link knows whose inbox it shows.
Read marks are a read-up-to time plus ids read one by one (herald/domain/inbox.py decides); the page marks items
read and "mark all read", and applies the same rule to what it shows. A test notification is an ordinary
NotificationWorkflow from agent `herald`, on the one channel asked for, without fallback to other channels.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from temporalio.service import RPCError

from herald.adapters.logs import bind
from herald.api.auth import MISSING_TOKEN, UNKNOWN_TOKEN, PathUserOnly, bearer_scheme, is_admin_key, unauthorized
from herald.api.deps import Deps, UserId
from herald.api.errors import ApiError, ErrorBody
from herald.domain.inbox import build_test_notification, mark_read
from herald.models import new_notification_id, utcnow
from herald.models.inbox import InboxReadState, MarkRead, TestNotificationRequest
from herald.services.auth import resolve_token

router = APIRouter(tags=["inbox"])
_USER_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


class Me(BaseModel):
    """Who the bearer token speaks for; `auth` false means the API runs open (`herald dev`)."""

    kind: Literal["user", "agent", "admin", "anyone"]
    user_id: str | None = None
    agent_id: str | None = None
    auth: bool


class TestNotificationSent(BaseModel):
    notification_id: str
    workflow_id: str
    status_url: str


@router.get("/v1/me", response_model=Me, responses={401: {"model": ErrorBody}})
async def who_am_i(
    deps: Deps, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Me:
    """The token's principal. Even with auth off a user token names its user: the page needs to know whose inbox."""
    settings = deps.settings
    token = credentials.credentials if credentials else None
    if token and is_admin_key(settings, token):
        return Me(kind="admin", auth=settings.api.auth)
    principal = await resolve_token(deps.store, token) if token else None
    if principal is not None:
        subject = {"user_id": principal.subject} if principal.kind == "user" else {"agent_id": principal.subject}
        return Me(kind=principal.kind, auth=settings.api.auth, **subject)
    if settings.api.auth:
        raise unauthorized(UNKNOWN_TOKEN if token else MISSING_TOKEN)
    return Me(kind="anyone", auth=False)


@router.get(
    "/v1/users/{user_id}/notifications/read",
    response_model=InboxReadState,
    dependencies=[PathUserOnly],
    responses=_USER_ERRORS,
)
async def get_read_marks(user_id: UserId, deps: Deps) -> InboxReadState:
    """The user's read marks: read if created at or before `read_up_to`, or listed in `read_ids`."""
    return await deps.store.users.get_inbox_state(user_id)


@router.post(
    "/v1/users/{user_id}/notifications/read",
    response_model=InboxReadState,
    dependencies=[PathUserOnly],
    responses=_USER_ERRORS,
)
async def post_read_marks(user_id: UserId, marks: MarkRead, deps: Deps) -> InboxReadState:
    """Mark notifications read by id, and with `up_to` everything created by then ("mark all read")."""
    state = await deps.store.users.get_inbox_state(user_id)
    state = mark_read(state, notification_ids=marks.notification_ids, up_to=marks.up_to, now=utcnow())
    await deps.store.users.put_inbox_state(user_id, state)
    return state


@router.post(
    "/v1/users/{user_id}/test-notification",
    status_code=202,
    response_model=TestNotificationSent,
    dependencies=[PathUserOnly],
    responses={**_USER_ERRORS, 503: {"model": ErrorBody}},
)
async def send_test_notification(user_id: UserId, request: TestNotificationRequest, deps: Deps) -> TestNotificationSent:
    """Send the user a test notification from agent `herald` on this channel alone, through the whole pipeline:
    preferences apply, and its outcome says whether the channel reached them."""
    notification = build_test_notification(user_id, request.channel, new_notification_id(), utcnow())
    bind(notification_id=notification.notification_id)
    herald = await deps.client()
    # No fallback to other channels: the test is about this one (push that reaches no browser still rides email).
    only_this_channel = herald.without_fallback()
    try:
        handle = await only_this_channel.notify(notification)
    except RPCError as exc:
        raise ApiError(503, "temporal_unavailable", "Temporal refused the start; try again") from exc
    return TestNotificationSent(
        notification_id=handle.notification_id,
        workflow_id=handle.workflow_id,
        status_url=f"/v1/notifications/{handle.notification_id}",
    )
