"""Callbacks from providers: Twilio's message status reports, and the signature check every Twilio webhook passes."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData, UploadFile
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from herald.api.deps import Deps, Services
from herald.api.errors import ApiError, ErrorBody
from herald.config import Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["providers"])

TWILIO_STATUS_PATH = "/v1/providers/twilio/status"
SIGNATURE_HEADER = "X-Twilio-Signature"

# Only final reports are recorded. Twilio does not promise callbacks in order, and the store keeps the
# latest report per message, so a late "sent" must not overwrite "delivered".
FINAL_TWILIO_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled", "read"})


def signed_url(settings: Settings, path: str, query: str) -> str:
    """The URL Twilio called and signed: Herald's public URL, not whatever host a proxy handed us."""
    return settings.api_url.rstrip("/") + path + (f"?{query}" if query else "")


async def signed_twilio_form(request: Request, services: Services) -> FormData:
    """The form of a Twilio webhook (status callback or inbound message), once its X-Twilio-Signature holds for
    Herald's public URL.

    Parsed here rather than by request.form(), which needs python-multipart even for urlencoded bodies; a
    multidict, so the validator signs repeated keys the way Twilio does.
    """
    settings = services.settings
    if settings.twilio.auth_token is None:
        raise ApiError(404, "twilio_not_configured", "Twilio is not configured here: TWILIO_AUTH_TOKEN is unset")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "unsupported_media_type", "expected an application/x-www-form-urlencoded body")
    try:
        pairs: list[tuple[str, str | UploadFile]] = list(
            parse_qsl((await request.body()).decode(), keep_blank_values=True)
        )
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_request", "the form body is not UTF-8") from None
    form = FormData(pairs)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise ApiError(403, "invalid_signature", f"the {SIGNATURE_HEADER} header is missing", SIGNATURE_HEADER)
    url = signed_url(settings, request.url.path, request.url.query)
    if not RequestValidator(settings.twilio.auth_token.get_secret_value()).validate(url, form, signature):
        raise ApiError(
            403,
            "invalid_signature",
            f"{SIGNATURE_HEADER} does not match: check TWILIO_AUTH_TOKEN, and that HERALD_PUBLIC_URL is the URL Twilio calls",
            SIGNATURE_HEADER,
        )
    return form


@router.post(
    TWILIO_STATUS_PATH,
    status_code=204,
    response_class=Response,
    responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}, 415: {"model": ErrorBody}},
)
async def twilio_status(request: Request, deps: Deps) -> Response:
    """Twilio's StatusCallback: a signed form post recording delivered/undelivered/failed against the attempt.

    Point StatusCallback at `HERALD_PUBLIC_URL` + this path; the signature covers that exact URL.
    """
    form = await signed_twilio_form(request, deps)
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not isinstance(sid, str) or not sid or not isinstance(status, str) or not status:
        missing = "MessageSid" if not sid else "MessageStatus"
        raise ApiError(422, "invalid_request", f"{missing} is required", missing)
    status = status.strip().lower()[:32]
    error_code = form.get("ErrorCode")
    code = error_code[:16] if isinstance(error_code, str) and error_code else None
    # Only the SID, status and code: the form also carries To and From, which never reach a log.
    if status in FINAL_TWILIO_STATUSES:
        known = await deps.store.notifications.record_provider_status(sid[:64], status, code)
        if not known:
            log.info("twilio status %s for message %s, which no attempt sent; ignored", status, sid[:64])
    return Response(status_code=204)
