"""A person's own settings: preferences and contact. Their user token or the admin key reaches them."""

from __future__ import annotations

from fastapi import APIRouter

from herald.adapters.channels.chat import server_host, url_problem
from herald.adapters.netguard import UnsafeURL, check_public_host, check_public_url
from herald.api.auth import PathUserOnly
from herald.api.deps import Deps, UserId
from herald.api.errors import ApiError, ErrorBody
from herald.models import Contact, Preferences
from herald.models.users import mask_chat_url

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
    """Replace the user's contact. Saving clears Herald's marks on refused numbers and disabled webhooks.

    Chat URLs come back as their scheme alone (`discord://…`), here and from GET; one sent back so keeps the
    saved URL at its index."""
    if contact.webhook_url and not deps.settings.webhook.allow_private_webhooks:
        try:
            await check_public_url(contact.webhook_url)
        except UnsafeURL as exc:
            raise ApiError(422, "invalid_request", f"webhook_url {exc}", "webhook_url") from None
    if contact.chat_urls:
        contact = contact.model_copy(update={"chat_urls": await _unmasked(user_id, contact.chat_urls, deps)})
    for index, url in enumerate(contact.chat_urls or []):
        await _check_chat_url(index, url, deps)
    contact = contact.model_copy(update={"phone_rejected": None, "webhook_disabled": None})
    await deps.store.users.put_contact(user_id, contact)
    return contact.masked()


async def _unmasked(user_id: str, urls: list[str], deps: Deps) -> list[str]:
    """A chat URL sent back as read (`discord://…`) keeps the saved URL at its index, so a client that reads the
    contact, changes the email and saves it (the browser page) keeps the chat URLs it could not see in full."""
    if not any(url == mask_chat_url(url) for url in urls):
        return urls
    saved = await deps.store.users.get_contact(user_id)
    stored = (saved.chat_urls if saved else None) or []
    kept: list[str] = []
    for index, url in enumerate(urls):
        if url == mask_chat_url(url):
            if index >= len(stored) or mask_chat_url(stored[index]) != url:
                field = f"chat_urls.{index}"
                message = f"{field} is a masked URL with no saved URL like it at this index; send the URL in full"
                raise ApiError(422, "invalid_request", message, field)
            url = stored[index]
        kept.append(url)
    return kept


async def _check_chat_url(index: int, url: str, deps: Deps) -> None:
    """A 422 naming `chat_urls.<index>` for a URL Apprise cannot load, a scheme not allowed, or (outside dev mode)
    a host that resolves inward. The message never quotes the URL: it holds the service's token."""
    field = f"chat_urls.{index}"
    problem = url_problem(url, deps.settings.chat.allows)
    if problem is not None:
        raise ApiError(422, "invalid_request", f"{field} {problem}", field)
    if deps.settings.webhook.allow_private_webhooks:
        return
    server = server_host(url)
    if server is not None:
        try:
            await check_public_host(*server)
        except UnsafeURL as exc:
            raise ApiError(422, "invalid_request", f"{field} {exc}", field) from None


@router.get("/v1/users/{user_id}/contact", response_model=Contact, response_model_exclude_none=True)
async def get_contact(user_id: UserId, deps: Deps) -> Contact:
    contact = await deps.store.users.get_contact(user_id)
    if contact is None:
        raise ApiError(404, "not_found", f"no contact saved for user {user_id}", "user_id")
    return contact.masked()  # chat URLs as their scheme alone: they hold tokens
