"""One-click unsubscribe (RFC 8058): every email's signed `List-Unsubscribe` link, answered without a login.

A mail client (Gmail, Yahoo) POSTs `List-Unsubscribe=One-Click` to the link; a person who opens it in a browser
gets a confirmation page whose button POSTs the same. Either turns email from that agent off in the person's
preferences (the digest's link turns the digest off); doing it again changes nothing and says so.
"""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from herald.adapters.channels.render import preferences_link
from herald.api.answers import LINK_ERRORS, TOKEN_STATUS, link_secret, page
from herald.api.deps import Deps
from herald.api.errors import ApiError
from herald.domain.answers import TokenError
from herald.domain.unsubscribe import (
    ONE_CLICK_FIELD,
    ONE_CLICK_VALUE,
    UnsubscribeToken,
    unsubscribed,
    verify_unsubscribe,
    what_it_stops,
)
from herald.models import utcnow

log = logging.getLogger(__name__)

router = APIRouter(tags=["unsubscribe"])

Token = Annotated[str, Path(max_length=512, description="a signed unsubscribe link's token")]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
ONE_CLICK_FORM = {
    "type": "object",
    "properties": {ONE_CLICK_FIELD: {"type": "string", "enum": [ONE_CLICK_VALUE]}},
    "required": [ONE_CLICK_FIELD],
}


def _verified(deps: Deps, token: str) -> UnsubscribeToken:
    try:
        return verify_unsubscribe(link_secret(deps), token, utcnow())
    except TokenError as exc:
        raise ApiError(TOKEN_STATUS[exc.code], f"link_{exc.code}", str(exc), "token") from None


def _manage(deps: Deps) -> str:
    url = preferences_link(deps.settings.api_url)
    return f'<p><a href="{html.escape(url or "/")}">Manage preferences</a></p>'


@router.get("/v1/unsubscribe/{token}", response_class=HTMLResponse, responses=LINK_ERRORS)
async def unsubscribe_page(token: Token, deps: Deps) -> HTMLResponse:
    """The link opened in a browser: a confirmation page. Only its button (a POST) unsubscribes, so a mail
    scanner that fetches every link changes nothing."""
    claims = _verified(deps, token)
    stops = html.escape(what_it_stops(claims.agent_id))
    form = (
        f"<p>Unsubscribe from {stops}?</p>"
        f'<form method="post"><input type="hidden" name="{ONE_CLICK_FIELD}" value="{ONE_CLICK_VALUE}">'
        '<button type="submit" style="padding:8px 16px;font-size:15px;">Unsubscribe</button></form>'
    )
    return page("Unsubscribe", form + _manage(deps))


@router.post(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **LINK_ERRORS, 415: LINK_ERRORS[422]},
    # The body is read by hand (a form, two encodings): the schema says what the route takes.
    openapi_extra={
        "requestBody": {"required": True, "content": {media: {"schema": ONE_CLICK_FORM} for media in FORM_TYPES}}
    },
)
async def unsubscribe(token: Token, request: Request, deps: Deps) -> HTMLResponse:
    """RFC 8058 one-click: the body is the form `List-Unsubscribe=One-Click` (urlencoded or multipart), sent by
    the mail client or the confirmation page. Turns the agent's email (or the digest) off; idempotent."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in FORM_TYPES:
        raise ApiError(415, "unsupported_media_type", f"the body must be a form: {ONE_CLICK_FIELD}={ONE_CLICK_VALUE}")
    claims = _verified(deps, token)
    form = await request.form()
    if form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        raise ApiError(422, "invalid_request", f"{ONE_CLICK_FIELD}: must be {ONE_CLICK_VALUE}", ONE_CLICK_FIELD)
    before, after = await deps.store.users.update_preferences(
        claims.user_id, lambda p: unsubscribed(p, claims.agent_id)
    )
    stops = what_it_stops(claims.agent_id)
    if before == after:
        message = f"You were already unsubscribed from {stops}."
    else:
        log.info("unsubscribed from %s", "the digest" if claims.agent_id is None else "an agent's email")
        message = f"Done: you are unsubscribed from {stops}."
    return page("Unsubscribed", f"<p>{html.escape(message)}</p>" + _manage(deps))
