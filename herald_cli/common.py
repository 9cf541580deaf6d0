"""The `herald` app, its command groups, and what every command shares."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from herald.config import Settings
from herald.domain.validation import describe

app = typer.Typer(help="Herald: durable notifications from AI agents to people.", no_args_is_help=True)
prefs_app = typer.Typer(help="A user's notification preferences.", no_args_is_help=True)
contact_app = typer.Typer(
    help="Where a user is reached: email, phone, webhook URL, Slack member id.", no_args_is_help=True
)
app.add_typer(prefs_app, name="prefs")
app.add_typer(contact_app, name="contact")
tokens_app = typer.Typer(help="User tokens: a user's own preferences, notifications, WebSocket.", no_args_is_help=True)
keys_app = typer.Typer(help="Agent keys: send notifications and events as one agent.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
vapid_app = typer.Typer(help="VAPID keys for Web Push.", no_args_is_help=True)
app.add_typer(vapid_app, name="vapid")
codec_app = typer.Typer(help="Keys that encrypt Temporal payloads (HERALD_CODEC_KEYS).", no_args_is_help=True)
app.add_typer(codec_app, name="codec")
rules_app = typer.Typer(help="Trigger rules: which agent events become notifications.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
telegram_app = typer.Typer(help="The Telegram bot: bind a person's chat to their user.", no_args_is_help=True)
app.add_typer(telegram_app, name="telegram")
silence_app = typer.Typer(
    help="Silences: notifications they match end `silenced`, logged and not delivered.", no_args_is_help=True
)
app.add_typer(silence_app, name="silence")
subscriptions_app = typer.Typer(
    help="Subscriptions: signed POSTs of what happens (delivered, failed, ..., heartbeat.missed) to a URL.",
    no_args_is_help=True,
)
app.add_typer(subscriptions_app, name="subscriptions")
groups_app = typer.Typer(
    help="Groups (teams): a name for a list of users, which a notification may address instead of one user.",
    no_args_is_help=True,
)
app.add_typer(groups_app, name="groups")
policies_app = typer.Typer(
    help="Escalation policies: who is notified, step by step, until someone acks.", no_args_is_help=True
)
app.add_typer(policies_app, name="policies")
schedules_app = typer.Typer(help="On-call schedules: a rotation, overrides, and who is on call.", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")
db_app = typer.Typer(
    help="The store's schema: migrations (HERALD_DATABASE_URL, or HERALD_HOME's herald.db).", no_args_is_help=True
)
app.add_typer(db_app, name="db")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")


def skips_teardown(command: Callable[P, None]) -> Callable[P, None]:
    """End a command that opened a Temporal client with os._exit, after flushing its output.

    A codec problem (herald/adapters/codec.py: the workers' payloads need a key this process lacks, or a key list is
    malformed) ends the command with its message on stderr and exit code 2, not a traceback.

    The client's Rust core keeps threads that can abort CPython's finalization in a short-lived process
    (temporalio/sdk-python#300: "PyGILState_Release ... must be current", exit 134). Skipping the
    teardown is the known workaround; the command's own work and exit code are unchanged.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
            code = 0
        except typer.Exit as exc:
            code = exc.exit_code
        except ValueError as exc:
            from herald.adapters.codec import CodecConfigError, CodecError

            if not isinstance(exc, CodecError | CodecConfigError):
                raise
            # A codec key that can't read the workers' payloads, or a malformed key list: say what to set.
            code = fail(str(exc)).exit_code
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    return wrapper


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def validated(build: Callable[[], M]) -> M:
    """Build a model or exit with one line per problem, naming the field."""
    try:
        return build()
    except ValidationError as exc:
        for problem in describe(exc.errors()):
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2) from None


def wants_link(link: bool | None) -> bool:
    """Whether to print a login link, which holds a token: as asked, else only when stdout is a terminal, so a
    redirected or captured output (`$(herald tokens issue ada)`, a log file) never carries one unasked."""
    return link if link is not None else sys.stdout.isatty()


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise fail(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def with_store(action: Callable[[Any], Awaitable[T]]) -> T:
    async def _main() -> T:
        from herald.adapters.store import SchemaOutOfDate, Store

        try:
            store = await Store.open(Settings().resolved_database_url)
        except SchemaOutOfDate as exc:
            raise fail(str(exc)) from None
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(_main())
