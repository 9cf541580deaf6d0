"""Web Push: the browser's subscriptions per user, and the VAPID public key a page subscribes with."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from herald.adapters.channels.webpush import subscription_keys_problem
from herald.adapters.vapid import application_server_key
from herald.api.auth import PathUserOnly
from herald.api.deps import Deps, UserId
from herald.api.errors import ApiError, ErrorBody
from herald.models import PushSubscription

router = APIRouter(tags=["push"])

# A user's own subscriptions: that user's token or the admin key (herald/api/auth.py).
_AUTH_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


class PushSubscriptionSaved(BaseModel):
    user_id: str
    endpoint: str


class PushUnsubscribe(BaseModel):
    """The subscription to forget; a whole `PushSubscription.toJSON()` is accepted too (only the endpoint counts)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(min_length=1, max_length=2048)


class VapidPublicKey(BaseModel):
    public_key: str = Field(description="base64url uncompressed P-256 point, for pushManager.subscribe")


@router.post(
    "/v1/users/{user_id}/push-subscriptions",
    status_code=201,
    response_model=PushSubscriptionSaved,
    dependencies=[PathUserOnly],
    responses=_AUTH_ERRORS,
)
async def add_push_subscription(user_id: UserId, subscription: PushSubscription, deps: Deps) -> PushSubscriptionSaved:
    """Save a browser's subscription (its `toJSON()`); posting the same endpoint again replaces it."""
    problem = subscription_keys_problem(subscription)
    if problem is not None:
        field, message = problem
        raise ApiError(422, "invalid_request", f"{field}: {message}", field)
    await deps.store.users.add_push_subscription(user_id, subscription)
    return PushSubscriptionSaved(user_id=user_id, endpoint=subscription.endpoint)


@router.delete(
    "/v1/users/{user_id}/push-subscriptions",
    status_code=204,
    response_class=Response,
    dependencies=[PathUserOnly],
    responses=_AUTH_ERRORS,
)
async def remove_push_subscription(user_id: UserId, body: PushUnsubscribe, deps: Deps) -> Response:
    """Forget one subscription of the user (the browser unsubscribed)."""
    if not await deps.store.users.remove_push_subscription(user_id, body.endpoint):
        raise ApiError(404, "not_found", f"user {user_id} has no push subscription with that endpoint", "endpoint")
    return Response(status_code=204)


@router.get("/v1/vapid-public-key", response_model=VapidPublicKey)
async def vapid_public_key(deps: Deps) -> VapidPublicKey:
    """The application server key a page passes to `pushManager.subscribe`."""
    private_key = deps.settings.webpush.vapid_private_key
    if private_key is None:
        raise ApiError(404, "vapid_not_configured", "Web Push is not configured: set VAPID_PRIVATE_KEY")
    try:
        return VapidPublicKey(public_key=application_server_key(private_key.get_secret_value()))
    except ValueError as exc:
        raise ApiError(500, "vapid_misconfigured", str(exc)) from None
