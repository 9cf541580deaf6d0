"""A person's side: preferences, contact, user tokens and agent keys."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from herald.domain.validation import describe
from herald.models import (
    Contact,
    Preferences,
)
from herald_cli.common import (
    contact_app,
    echo_json,
    fail,
    keys_app,
    prefs_app,
    read_json,
    telegram_app,
    tokens_app,
    validated,
    wants_link,
    with_store,
)


def _issue(
    kind: Literal["user", "agent"],
    subject: str,
    argument: str,
    hint: str,
    *,
    rate: float | None = None,
    burst: int | None = None,
) -> str:
    """Print the new token once on stdout (it is stored only as a hash), and what it is for on stderr."""
    from pydantic import TypeAdapter

    from herald.models import Identifier
    from herald.services.auth import issue_token

    try:
        TypeAdapter(Identifier).validate_python(subject)
    except ValidationError as exc:
        raise fail(f"{argument}: {describe(exc.errors())[0].message}") from None
    token = with_store(lambda store: issue_token(store, kind, subject, rate=rate, burst=burst))
    typer.echo(token)
    typer.echo(hint, err=True)
    return token


@tokens_app.command("issue")
def tokens_issue(
    user_id: Annotated[str, typer.Argument(help="the user the token speaks for")],
    link: Annotated[
        bool | None,
        typer.Option(
            "--link/--no-link",
            help="also print the browser login link (HERALD_PUBLIC_URL or the local API) after the token; "
            "default: on a terminal only, so `$(herald tokens issue ada)` stays the token alone",
        ),
    ] = None,
) -> None:
    """Issue a token for USER_ID: their own preferences, contact, notifications and WebSocket, and the login link."""
    from herald.config import Settings
    from herald.domain.inbox import login_link

    token = _issue(
        "user",
        user_id,
        "user_id",
        f"# token for user {user_id}, shown only now: Authorization: Bearer <token>, or ?token= on /v1/ws",
    )
    if wants_link(link):
        # On stdout, never stderr: the link holds the token. The fragment (#token=) never reaches a server log.
        typer.echo(login_link(Settings().api_url, token))
        typer.echo("# open the link above to see the inbox and preferences in a browser", err=True)


@keys_app.command("issue")
def keys_issue(
    agent_id: Annotated[str, typer.Argument(help="the agent the key sends as")],
    rate: Annotated[
        float | None,
        typer.Option(help="this key's quota: requests per second that create work (default HERALD_AGENT_RATE)"),
    ] = None,
    burst: Annotated[
        int | None,
        typer.Option(help="this key's burst: requests at once after a quiet spell (default HERALD_AGENT_BURST)"),
    ] = None,
) -> None:
    """Issue a key for AGENT_ID: it may send notifications and events as that agent only, within its quota."""
    from herald.config import Settings
    from herald.domain.quota import Limits

    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise fail("--rate: must be a positive number of requests per second")
    if burst is not None and burst < 1:
        raise fail("--burst: must be at least 1")
    api = Settings().api
    limits = Limits(rate=rate if rate is not None else api.agent_rate, burst=burst or api.agent_burst)
    _issue(
        "agent",
        agent_id,
        "agent_id",
        f"# key for agent {agent_id}, shown only now: Authorization: Bearer <key>; quota {limits.describe()}",
        rate=rate,
        burst=burst,
    )


@prefs_app.command("get")
def prefs_get(user: str) -> None:
    """Print the user's preferences as JSON."""
    echo_json(with_store(lambda store: store.users.get_preferences(user)).model_dump(mode="json", exclude_none=True))


@prefs_app.command("set")
def prefs_set(user: str, file: Path) -> None:
    """Replace the user's preferences with FILE (JSON: {"default": {...}, "agents": {...}})."""
    preferences = validated(lambda: Preferences.model_validate(read_json(file)))
    with_store(lambda store: store.users.put_preferences(user, preferences))
    typer.echo(f"saved preferences for {user}")


@contact_app.command("get")
def contact_get(user: str) -> None:
    contact = with_store(lambda store: store.users.get_contact(user))
    if contact is None:
        raise fail(f"no contact saved for {user}", 1)
    echo_json(contact.masked().model_dump(mode="json", exclude_none=True))  # chat URLs: their scheme alone


@contact_app.command("set")
def contact_set(user: str, file: Path) -> None:
    """Replace the user's contact with FILE (JSON: {"email", "phone", "webhook_url", "slack_user_id"})."""
    contact = validated(lambda: Contact.model_validate(read_json(file)))
    with_store(lambda store: store.users.put_contact(user, contact))
    typer.echo(f"saved contact for {user}")


@telegram_app.command("link")
def telegram_link(
    user: str,
    valid_hours: Annotated[float, typer.Option(help="how long the code works", min=0.1, max=24 * 7)] = 24.0,
) -> None:
    """Print a one-time `/start <code>`: sent to the bot from Telegram, it binds that chat to USER (their
    contact's telegram_chat_id), and only that chat answers USER's questions there."""
    import time

    from herald.domain.telegram import code_key, new_link_code
    from herald.models.common import _identifier

    try:
        _identifier(user)
    except ValueError as exc:
        raise fail(f"user: {exc}") from None
    code = new_link_code()
    expires_at = time.time() + valid_hours * 3600
    with_store(lambda store: store.answers.add_telegram_link(code_key(code), user, expires_at))
    typer.echo(f"/start {code}")
    typer.echo(
        f"# send it to the bot within {valid_hours:g} hours (or open t.me/<your bot>?start={code}); it works once",
        err=True,
    )
