"""`/v1/subscriptions`: save, list and delete subscriptions to what happens (herald/models/subscriptions.py).

The admin subscribes to anything; an agent key only to its own agent's notifications and heartbeats (`agent_id` must
name it), and reads and deletes only its own subscriptions (anyone else's answers 404, as an unknown name does). A
user token subscribes to nothing. The URL goes through the SSRF guard when saved (a 422 naming `url`) and again at
each send. A PUT saves the subscription whole and enables it again, its failures cleared.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from herald.adapters.netguard import UnsafeURL
from herald.api.auth import AuthError, Caller, CallerDep, access_problem
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody
from herald.domain.subscriptions import state_of
from herald.models import ID_REGEX, Subscription, SubscriptionInput, SubscriptionView
from herald.services.subscriptions import save_subscription

SubscriptionName = Annotated[str, Path(pattern=ID_REGEX, description="the subscription's name")]

router = APIRouter(tags=["subscriptions"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionView]


def owner_of(caller: Caller) -> str:
    return caller.kind if caller.subject is None else f"{caller.kind}:{caller.subject}"


def view(subscription: Subscription) -> SubscriptionView:
    return SubscriptionView(**subscription.model_dump(), state=state_of(subscription))


def visible(caller: Caller, subscription: Subscription) -> bool:
    if caller.kind in ("anyone", "admin"):
        return True
    return caller.kind == "agent" and subscription.agent_id == caller.subject


def may_subscribe(caller: Caller, body: SubscriptionInput) -> AuthError | None:
    """The admin to anything; an agent key to its own agent only; a user token to nothing."""
    if caller.kind == "agent":
        if body.agent_id is None:
            return AuthError(
                403,
                "forbidden",
                f"an agent key subscribes to its own agent only: set agent_id to {caller.subject}",
                "agent_id",
            )
        return access_problem(caller, agents=[body.agent_id], field="agent_id")
    if caller.kind == "user":
        return AuthError(403, "forbidden", "subscriptions take the admin key or an agent key", None)
    return access_problem(caller)


def not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"no subscription {name}", "name")


@router.put(
    "/v1/subscriptions/{name}",
    response_model=SubscriptionView,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def put_subscription(
    name: SubscriptionName, body: SubscriptionInput, caller: CallerDep, deps: Deps
) -> SubscriptionView:
    """Save the subscription: Standard Webhooks-signed POSTs (HERALD_WEBHOOK_SECRET) of the events named, one at a
    time and in order, each retried as a webhook is. Saving enables it again (a disabled one too), its failures
    cleared. The URL must resolve to public addresses (outside `herald dev`)."""
    problem = may_subscribe(caller, body)
    if problem is not None:
        raise problem
    before = await deps.store.subscriptions.get_subscription(name)
    if before is not None and not visible(caller, before):
        raise AuthError(403, "forbidden", f"the subscription {name} is not this key's", "name")
    try:
        subscription = await save_subscription(
            deps.store, name, body, owner_of(caller), allow_private=deps.settings.webhook.allow_private_webhooks
        )
    except UnsafeURL as exc:
        raise ApiError(422, "invalid_request", f"url {exc}", "url") from None
    return view(subscription)


@router.get("/v1/subscriptions", response_model=SubscriptionList)
async def list_subscriptions(caller: CallerDep, deps: Deps) -> SubscriptionList:
    """Subscriptions by name, each with its state (`enabled`, or `disabled` after it kept failing), its failures in
    a row and its last error: all for the admin, an agent key's own for an agent."""
    if caller.kind == "user":
        raise AuthError(403, "forbidden", "subscriptions take the admin key or an agent key", None)
    agent = caller.subject if caller.kind == "agent" else None
    found = await deps.store.subscriptions.list_subscriptions(agent_id=agent)
    return SubscriptionList(subscriptions=[view(s) for s in found if visible(caller, s)])


@router.get("/v1/subscriptions/{name}", response_model=SubscriptionView, responses={404: {"model": ErrorBody}})
async def get_subscription(name: SubscriptionName, caller: CallerDep, deps: Deps) -> SubscriptionView:
    found = await deps.store.subscriptions.get_subscription(name)
    if found is None or not visible(caller, found):
        raise not_found(name)
    return view(found)


@router.delete("/v1/subscriptions/{name}", status_code=204, responses={404: {"model": ErrorBody}})
async def delete_subscription(name: SubscriptionName, caller: CallerDep, deps: Deps) -> Response:
    """Delete the subscription: nothing more is posted to it (an event already being retried is dropped)."""
    found = await deps.store.subscriptions.get_subscription(name)
    if found is None or not visible(caller, found) or not await deps.store.subscriptions.delete_subscription(name):
        raise not_found(name)
    return Response(status_code=204)
