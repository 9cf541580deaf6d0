"""A person's own settings: preferences and contact. Their user token or the admin key reaches them."""

from __future__ import annotations

from fastapi import APIRouter

from herald.adapters.netguard import UnsafeURL, check_public_url
from herald.api.auth import PathUserOnly
from herald.api.deps import Deps, UserId
from herald.api.errors import ApiError, ErrorBody
from herald.models import Contact, Preferences

router = APIRouter(
    tags=["users"],
    dependencies=[PathUserOnly],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.put("/v1/users/{user_id}/preferences", response_model=Preferences, response_model_exclude_none=True)
async def put_preferences(user_id: UserId, preferences: Preferences, deps: Deps) -> Preferences:
    """Replace the user's preferences; notifications started afterwards follow them."""
    await deps.store.users.put_preferences(user_id, preferences)
    return preferences


@router.get("/v1/users/{user_id}/preferences", response_model=Preferences, response_model_exclude_none=True)
async def get_preferences(user_id: UserId, deps: Deps) -> Preferences:
    return await deps.store.users.get_preferences(user_id)


@router.put("/v1/users/{user_id}/contact", response_model=Contact, response_model_exclude_none=True)
async def put_contact(user_id: UserId, contact: Contact, deps: Deps) -> Contact:
    """Replace the user's contact. Saving clears Herald's marks on refused numbers and disabled webhooks."""
    if contact.webhook_url and not deps.settings.webhook.allow_private_webhooks:
        try:
            await check_public_url(contact.webhook_url)
        except UnsafeURL as exc:
            raise ApiError(422, "invalid_request", f"webhook_url {exc}", "webhook_url") from None
    contact = contact.model_copy(update={"phone_rejected": None, "webhook_disabled": None})
    await deps.store.users.put_contact(user_id, contact)
    return contact


@router.get("/v1/users/{user_id}/contact", response_model=Contact, response_model_exclude_none=True)
async def get_contact(user_id: UserId, deps: Deps) -> Contact:
    contact = await deps.store.users.get_contact(user_id)
    if contact is None:
        raise ApiError(404, "not_found", f"no contact saved for user {user_id}", "user_id")
    return contact
