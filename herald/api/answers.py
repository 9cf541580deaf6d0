"""Answers coming back: signed answer links (email, webhooks, Web Push), the API, and SMS replies through Twilio.

Each route authenticates the person its own way (a signed single-use link, a user token, Twilio's signature plus
the phone the question went to) and hands the answer to the notification's workflow (`HeraldClient.respond`).
A link is burned only once the workflow took its answer, under one update id per link, so a refused answer or a
worker that didn't answer in time (503 with Retry-After) leaves it working, and its retries are one answer.
A notification the caller may not see is answered exactly as an unknown id (404).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape as xml_escape

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError
from temporalio.service import RPCError, RPCStatusCode

from herald.adapters.logs import bind
from herald.api.auth import Caller, CallerDep, authorize
from herald.api.deps import Deps, Services
from herald.api.errors import ApiError, ErrorBody, temporal_unavailable
from herald.api.providers import signed_twilio_form
from herald.api.views import QUERY_TIMEOUT, check_visible, notification_not_found
from herald.domain.answers import (
    AnswerToken,
    TokenError,
    link_update_id,
    parse_sms_answer,
    phone_key,
    sms_prompt,
    verify_token,
)
from herald.domain.validation import describe
from herald.models import ANSWER_TEXT_MAX_CHARS, ID_REGEX, Action, Answer, AnswerChannel, RespondBody, utcnow
from herald.models.answers import answer_text
from herald.services.gateway import AnswerRefused, AnswerTimeout

log = logging.getLogger(__name__)

router = APIRouter(tags=["answers"])

TWILIO_INBOUND_PATH = "/v1/providers/twilio/inbound"
NotificationId = Annotated[str, Path(pattern=ID_REGEX, description="the notification's id")]
Token = Annotated[str, Path(max_length=512, description="a signed answer link's token")]

# AnswerRefused codes as HTTP statuses: a conflict with what already happened, or a request that can never work.
# (`not_recipient` only comes from a link or SMS reply whose notification changed hands: the routes check the
# caller first, and answer a notification the caller may not see as unknown.)
REFUSAL_STATUS = {
    "unknown_action": 422,
    "invalid_text": 422,
    "not_recipient": 403,
    "not_found": 404,
    "too_late": 409,
    "already_answered": 409,
    "already_acknowledged": 409,
    "closed": 409,
}
TOKEN_STATUS = {"forged": 403, "malformed": 403, "expired": 410}

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Herald: {title}</title></head>
<body style="font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;background:#f5f5f7;
padding:24px;color:#1d1d1f;"><div style="max-width:480px;margin:0 auto;background:#fff;border-radius:8px;padding:24px;">
<h1 style="font-size:20px;margin:0 0 16px 0;">{title}</h1>{content}</div></body></html>"""


# The page's URL holds a token: never send it on as a Referer, never cache it; no scripts, forms post here only.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
# Refusals are JSON, as everywhere in the API (one error shape for every client); only the pages are HTML.
LINK_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody, "content": {"application/json": {}}} for status in (403, 404, 409, 410, 422, 503)
}
LINK_USED = "this answer link was already used: each link works once"


def page(title: str, content: str) -> HTMLResponse:
    """A small self-contained page; every interpolated text is escaped by the caller."""
    return HTMLResponse(_PAGE.format(title=html.escape(title), content=content), headers=PAGE_HEADERS)


def answered_message(answer: Answer, label: str) -> str:
    if answer.text is not None:
        return f"Thanks: your answer to “{label}” reached the agent."
    return f"Thanks: your answer “{label}” reached the agent."


def checked_text(text: str | None) -> str | None:
    """A free-text answer as the workflow will take it (stripped, 1-2000 characters of text), else a 422 naming
    `text` that never quotes it."""
    if text is None:
        return None
    try:
        return answer_text(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"text: {exc}", "text") from None


class _Answering:
    """What a link's holder is answering: the notification's user, offered actions and the action's label."""

    def __init__(self, user_id: str, actions: list[Action]) -> None:
        self.user_id, self.actions = user_id, actions

    def takes_text(self, action_id: str) -> bool:
        return any(action.id == action_id and action.takes_text for action in self.actions)

    def label(self, action_id: str) -> str:
        for action in self.actions:
            if action.id == action_id:
                return action.label
        return {"ack": "Acknowledge", "snooze": "Snooze 1h"}.get(action_id, action_id)


async def _answering(services: Services, notification_id: str) -> _Answering:
    """The notified user and the offered actions: from the recorded outcome once it finished, else its workflow
    (a query: a worker answers it)."""
    outcome = await services.store.notifications.get_outcome(notification_id)
    if outcome is None:
        herald = await services.client()
        try:
            outcome = await herald.status(notification_id, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise notification_not_found(notification_id) from None
            raise temporal_unavailable("Temporal did not answer; retry") from exc
    return _Answering(outcome.user_id, outcome.actions)


async def _label(services: Services, notification_id: str, action_id: str) -> str:
    """The label of the action just answered, for the page that says so; its id when the question can't be read."""
    try:
        return (await _answering(services, notification_id)).label(action_id)
    except ApiError:
        return _Answering("", []).label(action_id)


@dataclass(frozen=True)
class Recipient:
    """Who a notification went to, and which agent sent it: what deciding who may answer it needs."""

    user_id: str
    agent_id: str


async def recipient_of(services: Services, notification_id: str) -> Recipient:
    """The notification's user and agent: from the recorded outcome once it finished, else from its workflow's
    search attributes (Temporal's server answers: a question can be answered while no worker runs, and the answer
    is taken once one does), else, for a workflow started without them, from its status query."""
    outcome = await services.store.notifications.get_outcome(notification_id)
    if outcome is not None:
        return Recipient(outcome.user_id, outcome.agent_id)
    herald = await services.client()
    try:
        user_id, agent_id = await herald.parties(notification_id, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise notification_not_found(notification_id) from None
        raise temporal_unavailable("Temporal did not answer; retry") from exc
    if user_id is not None and agent_id is not None:
        return Recipient(user_id, agent_id)
    try:
        status = await herald.status(notification_id, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as exc:
        raise temporal_unavailable("Temporal did not answer; retry") from exc
    return Recipient(status.user_id, status.agent_id)


async def _respond(
    services: Services,
    notification_id: str,
    action_id: str,
    user_id: str,
    channel: AnswerChannel,
    *,
    update_id: str | None = None,
    text: str | None = None,
) -> Answer:
    """Hand the answer to the workflow; a worker that doesn't take it in time is a 503 with Retry-After."""
    bind(notification_id=notification_id)
    text = checked_text(text)
    herald = await services.client()
    timeout = timedelta(seconds=services.settings.answers.answer_timeout_seconds)
    try:
        return await herald.respond(
            notification_id,
            action_id,
            user_id,
            channel,
            store=services.store,
            update_id=update_id,
            rpc_timeout=timeout,
            text=text,
        )
    except AnswerTimeout as exc:
        raise temporal_unavailable(str(exc)) from None
    except RPCError as exc:
        raise temporal_unavailable("Temporal did not take the answer; retry") from exc


async def answer_as(
    services: Services,
    caller: Caller,
    notification_id: str,
    action_id: str,
    channel: AnswerChannel,
    text: str | None = None,
) -> Answer:
    """Answer as the notified user, for a caller that authenticated as them (or the admin). A notification the
    caller may not see is answered as unknown (404, as for an id that names nothing); its agent may see it but not
    answer (403). Raises AnswerRefused for the workflow's refusals, ApiError otherwise."""
    recipient = await recipient_of(services, notification_id)
    check_visible(caller, notification_id, recipient.user_id, recipient.agent_id)
    authorize(caller, users=[recipient.user_id], field="notification_id")
    return await _respond(services, notification_id, action_id, recipient.user_id, channel, text=text)


def _refused(exc: AnswerRefused, notification_id: str) -> ApiError:
    if exc.code == "not_found":  # gone between the look-up and the answer: as unknown as any other id
        return notification_not_found(notification_id)
    field = "text" if exc.code == "invalid_text" else "action_id"
    return ApiError(REFUSAL_STATUS.get(exc.code, 409), exc.code, exc.reason, field)


def link_secret(services: Services) -> bytes:
    secret = services.settings.answers.answer_secret
    if secret is None:
        raise ApiError(404, "answer_links_off", "answer links are not configured here: HERALD_ANSWER_SECRET is unset")
    return secret.get_secret_value().encode()


def _verified(services: Services, token: str) -> AnswerToken:
    try:
        return verify_token(link_secret(services), token, utcnow())
    except TokenError as exc:
        raise ApiError(TOKEN_STATUS[exc.code], f"link_{exc.code}", str(exc), "token") from None


@router.get("/v1/answers/{token}", response_class=HTMLResponse, responses=LINK_ERRORS)
async def answer_link_page(token: Token, deps: Deps) -> HTMLResponse:
    """An email's answer link opens this confirmation page; only its button (a POST) answers, so a mail
    scanner that fetches every link answers nothing."""
    claims = _verified(deps, token)
    answering = await _answering(deps, claims.notification_id)
    if claims.action_id is None:
        return page("Answer", "<p>This link takes a POST with a JSON body: {&quot;action_id&quot;: ...}.</p>")
    label = html.escape(answering.label(claims.action_id))
    # An action answered in words gets a text box; its form posts the words as `text`.
    box = (
        f'<p><label for="text">Your answer ({ANSWER_TEXT_MAX_CHARS} characters at most)</label></p>'
        f'<textarea id="text" name="text" rows="5" maxlength="{ANSWER_TEXT_MAX_CHARS}" required '
        'style="width:100%;box-sizing:border-box;font:inherit;"></textarea>'
        if answering.takes_text(claims.action_id)
        else ""
    )
    form = (
        f"<p>Answer <strong>{label}</strong>?</p>"
        '<form method="post"><input type="hidden" name="confirm" value="1">'
        f"{box}"
        f'<button type="submit" style="padding:8px 16px;font-size:15px;">{label}</button></form>'
    )
    return page(f"Answer: {answering.label(claims.action_id)}", form)


@router.post(
    "/v1/answers/{token}",
    responses={200: {"model": Answer, "content": {"text/html": {}}}, **LINK_ERRORS},
)
async def answer_link(token: Token, request: Request, deps: Deps) -> Response:
    """Answer through a signed, single-use link: the confirmation page's form (HTML back), or a webhook receiver
    or service worker POSTing `{"action_id"}` to its `respond_url` (JSON back)."""
    is_form = request.headers.get("content-type", "").split(";")[0].strip().lower() == (
        "application/x-www-form-urlencoded"
    )
    claims = _verified(deps, token)
    action_id, text = claims.action_id, None
    if is_form:
        # The page's form: `confirm`, and `text` from its text box (an action answered in words).
        try:
            fields = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_request", "the form body is not UTF-8") from None
        text = fields.get("text")
    else:
        try:
            body = RespondBody.model_validate_json(await request.body())
        except ValidationError as exc:
            first = describe(exc.errors())[0]
            raise ApiError(422, "invalid_request", str(first), first.field) from None
        if action_id is not None and body.action_id != action_id:
            raise ApiError(422, "invalid_request", "action_id: this link answers another action", "action_id")
        action_id, text = body.action_id, body.text
    if action_id is None:
        raise ApiError(422, "invalid_request", "action_id: is required", "action_id")
    links = deps.store.answers
    if await links.link_used(claims.nonce):
        raise ApiError(409, "link_used", LINK_USED, "token")
    recipient = await recipient_of(deps, claims.notification_id)
    # The answer first, under the link's own update id (its retries are this one answer); the link is burned
    # only once the workflow took it, so a refusal or a timeout leaves it working.
    try:
        answer = await _respond(
            deps,
            claims.notification_id,
            action_id,
            recipient.user_id,
            claims.channel,
            update_id=link_update_id(claims),
            text=text,
        )
    except AnswerRefused as exc:
        raise _refused(exc, claims.notification_id) from None
    if not await links.use_link(claims.nonce, claims.notification_id, float(claims.expires_at)):
        raise ApiError(409, "link_used", LINK_USED, "token")  # a request with the same link got there first
    if is_form:
        label = await _label(deps, claims.notification_id, action_id)
        return page("Answer received", f"<p>{html.escape(answered_message(answer, label))}</p>")
    return JSONResponse(answer.model_dump(mode="json"))


@router.post(
    "/v1/notifications/{notification_id}/respond",
    response_model=Answer,
    tags=["notifications"],
    responses={status: {"model": ErrorBody} for status in (403, 404, 409, 422, 503)},
)
async def respond(notification_id: NotificationId, body: RespondBody, caller: CallerDep, deps: Deps) -> Answer:
    """Answer as the notified user (their user token; the admin key answers for them): one of the notification's
    actions (with `text`, the person's words, for an action with `input: text`), `ack` or `snooze`. Agent keys may
    not answer: an agent asks, a person answers (its own notification is a 403). A notification of someone else's
    is a 404, exactly as an unknown id."""
    try:
        return await answer_as(deps, caller, notification_id, body.action_id, AnswerChannel.api, body.text)
    except AnswerRefused as exc:
        raise _refused(exc, notification_id) from None


# --- SMS replies (Twilio's inbound-message webhook) ---------------------------------------------------------------


def twiml(message: str | None) -> Response:
    """Twilio's reply format: one SMS back to the sender, or none."""
    inner = f"<Message>{xml_escape(message)}</Message>" if message else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return Response(body, media_type="application/xml")


@router.post(
    TWILIO_INBOUND_PATH,
    tags=["providers"],
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}},
        **{status: {"model": ErrorBody} for status in (400, 403, 404, 415, 422)},
    },
)
async def twilio_inbound(request: Request, deps: Deps) -> Response:
    """Twilio's incoming-message webhook: an SMS reply ("1", "approve", "ACK", "SNOOZE") answers the newest open
    question texted to that number; to a question with one action answered in words, any reply but a number is
    that action's `text`. Answers with TwiML, one SMS back saying what happened.

    Point the number's "A message comes in" webhook at `HERALD_PUBLIC_URL` + this path.
    """
    form = await signed_twilio_form(request, deps)
    sender, text = form.get("From"), form.get("Body")
    if not isinstance(sender, str) or not sender:
        raise ApiError(422, "invalid_request", "From is required", "From")
    question = await deps.store.answers.open_sms_question(phone_key(sender))
    if question is None:
        # The number and the text stay out of the log: they are personal data.
        log.info("sms reply with no open question for its number; ignored")
        return twiml("Herald: there is no open question for this number.")
    reply = text if isinstance(text, str) else ""
    answering = await _answering(deps, question.notification_id)
    action_id, words = parse_sms_answer(reply, question.action_ids, answering.actions)
    if action_id is None:
        prompt = sms_prompt(answering.actions) or "Reply " + ", ".join(question.action_ids)
        return twiml(f"Herald: that reply matched no choice. {prompt}, or ACK.")
    try:
        await _respond(deps, question.notification_id, action_id, question.user_id, AnswerChannel.sms, text=words)
    except AnswerRefused as exc:
        return twiml(f"Herald: not taken, {exc.reason}.")
    except ApiError as exc:
        if exc.field != "text":
            raise
        return twiml(f"Herald: not taken, {exc.message}.")
    return twiml(f"Herald: got it, {answering.label(action_id)}.")
