"""The `herald` command line: run the stack, send notifications, read outcomes, manage preferences."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from herald.config import Settings
from herald.models import AgentNotification, ChannelName, Contact, Preferences, Priority
from herald.validation import describe

app = typer.Typer(help="Herald: durable notifications from AI agents to people.", no_args_is_help=True)
prefs_app = typer.Typer(help="A user's notification preferences.", no_args_is_help=True)
contact_app = typer.Typer(help="Where a user is reached: email, phone, webhook URL.", no_args_is_help=True)
app.add_typer(prefs_app, name="prefs")
app.add_typer(contact_app, name="contact")
tokens_app = typer.Typer(help="User tokens: a user's own preferences, notifications, WebSocket.", no_args_is_help=True)
keys_app = typer.Typer(help="Agent keys: send notifications and events as one agent.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(keys_app, name="keys")
vapid_app = typer.Typer(help="VAPID keys for Web Push.", no_args_is_help=True)
app.add_typer(vapid_app, name="vapid")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")


def skips_teardown(command: Callable[P, None]) -> Callable[P, None]:
    """End a command that opened a Temporal client with os._exit, after flushing its output.

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


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise fail(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


@app.command()
@skips_teardown
def dev(
    temporal_port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal UI port")] = 8233,
    api_port: Annotated[int, typer.Option(help="Herald API port")] = 8000,
    demo: Annotated[bool, typer.Option(help="send one demo notification once the stack is up")] = False,
) -> None:
    """Run Temporal's dev server, a worker and the API together (data under HERALD_HOME)."""
    from herald.dev import DevPorts, main

    main(Settings(), DevPorts(temporal=temporal_port, ui=ui_port, api=api_port), demo)


@app.command()
@skips_teardown
def worker() -> None:
    """Run a worker against TEMPORAL_ADDRESS (all workflows and activities on HERALD_TASK_QUEUE)."""
    from worker import main

    main()


@app.command()
@skips_teardown
def api(
    host: Annotated[str | None, typer.Option(help="bind address (default HERALD_API_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default HERALD_API_PORT or 8000)")] = None,
) -> None:
    """Serve the HTTP API (FastAPI, OpenAPI at /docs)."""
    import uvicorn

    from herald.api.app import create_app

    settings = Settings()
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port)


@app.command()
@skips_teardown
def notify(
    agent: Annotated[str, typer.Option(help="the sending agent's id")],
    user: Annotated[str, typer.Option(help="the recipient's user id")],
    title: Annotated[str, typer.Option(help="one line, at most 200 characters")],
    body: Annotated[str, typer.Option(help="the message body")] = "",
    priority: Annotated[Priority, typer.Option(help="low, medium, high or critical")] = Priority.medium,
    channel: Annotated[
        list[ChannelName] | None, typer.Option(help="a channel to use; repeat for several (default push, email)")
    ] = None,
    dedup_key: Annotated[str | None, typer.Option(help="collapse notifications sharing this key")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the outcome and print it")] = False,
) -> None:
    """Send one notification and print its id (and, with --wait, its outcome)."""
    fields: dict[str, Any] = {"agent_id": agent, "user_id": user, "title": title, "body": body, "priority": priority}
    if channel:
        fields["channels"] = channel
    if dedup_key is not None:
        fields["dedup_key"] = dedup_key
    notification = validated(lambda: AgentNotification(**fields))

    async def _notify() -> Any:
        from starter.client import HeraldClient

        handle = await (await HeraldClient.connect(Settings())).notify(notification)
        result: dict[str, Any] = {"notification_id": handle.notification_id, "workflow_id": handle.workflow_id}
        if wait:
            result["outcome"] = (await handle.outcome()).model_dump(mode="json")
        return result

    echo_json(asyncio.run(_notify()))


@app.command()
@skips_teardown
def status(notification_id: Annotated[str, typer.Argument(help="the notification's id")]) -> None:
    """Print a notification's status, per-channel state and every delivery attempt."""

    async def _load(store: Any) -> Any:
        from herald.api.views import load_notification
        from starter.client import HeraldClient

        return await load_notification(store, await HeraldClient.connect(Settings()), notification_id)

    view = _with_store(_load)
    if view is None:
        raise fail(f"no notification {notification_id}", 1)
    typer.echo(f"{view.workflow_id}: {view.status.value} ({view.priority.value}, {view.agent_id} -> {view.user_id})")
    for channel, report in view.channels.items():
        via = f" (fallback for {report.fallback_for.value})" if report.fallback_for else ""
        via += " (escalation)" if report.escalation else ""
        typer.echo(f"  {channel.value:8} {report.status}{via}")
        for attempt in report.attempts:
            error = f" {attempt.error_type}: {attempt.error}" if attempt.error_type else ""
            typer.echo(
                f"    #{attempt.attempt} {attempt.result.value} at {attempt.finished_at:%Y-%m-%d %H:%M:%S}{error}"
            )
    if view.duplicate_of:
        typer.echo(f"  duplicate of {view.duplicate_of}")
    if view.ops_alert:
        typer.echo(f"  ops alert: {view.ops_alert}")


def _with_store(action: Callable[[Any], Awaitable[T]]) -> T:
    async def _main() -> T:
        from herald.store import Store

        store = await Store.open(Settings().resolved_database_url)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(_main())


def _issue(kind: Literal["user", "agent"], subject: str, argument: str, hint: str) -> None:
    """Print the new token once on stdout (it is stored only as a hash), and what it is for on stderr."""
    from pydantic import TypeAdapter

    from herald.auth import issue_token
    from herald.models import Identifier

    try:
        TypeAdapter(Identifier).validate_python(subject)
    except ValidationError as exc:
        raise fail(f"{argument}: {describe(exc.errors())[0].message}") from None
    typer.echo(_with_store(lambda store: issue_token(store, kind, subject)))
    typer.echo(hint, err=True)


@tokens_app.command("issue")
def tokens_issue(user_id: Annotated[str, typer.Argument(help="the user the token speaks for")]) -> None:
    """Issue a token for USER_ID: their own preferences, contact, notifications and WebSocket."""
    _issue(
        "user",
        user_id,
        "user_id",
        f"# token for user {user_id}, shown only now: Authorization: Bearer <token>, or ?token= on /v1/ws",
    )


@keys_app.command("issue")
def keys_issue(agent_id: Annotated[str, typer.Argument(help="the agent the key sends as")]) -> None:
    """Issue a key for AGENT_ID: it may send notifications and events as that agent only."""
    _issue("agent", agent_id, "agent_id", f"# key for agent {agent_id}, shown only now: Authorization: Bearer <key>")


@prefs_app.command("get")
def prefs_get(user: str) -> None:
    """Print the user's preferences as JSON."""
    echo_json(_with_store(lambda store: store.get_preferences(user)).model_dump(mode="json", exclude_none=True))


@prefs_app.command("set")
def prefs_set(user: str, file: Path) -> None:
    """Replace the user's preferences with FILE (JSON: {"default": {...}, "agents": {...}})."""
    preferences = validated(lambda: Preferences.model_validate(read_json(file)))
    _with_store(lambda store: store.put_preferences(user, preferences))
    typer.echo(f"saved preferences for {user}")


@contact_app.command("get")
def contact_get(user: str) -> None:
    contact = _with_store(lambda store: store.get_contact(user))
    if contact is None:
        raise fail(f"no contact saved for {user}", 1)
    echo_json(contact.model_dump(mode="json", exclude_none=True))


@contact_app.command("set")
def contact_set(user: str, file: Path) -> None:
    """Replace the user's contact with FILE (JSON: {"email", "phone", "webhook_url"})."""
    contact = validated(lambda: Contact.model_validate(read_json(file)))
    _with_store(lambda store: store.put_contact(user, contact))
    typer.echo(f"saved contact for {user}")


@vapid_app.command("generate")
def vapid_generate() -> None:
    """Print a new VAPID key pair as environment lines (the public key is the browser's applicationServerKey)."""
    from herald.vapid import generate_vapid_keys

    keys = generate_vapid_keys()
    typer.echo(f"VAPID_PRIVATE_KEY={keys.private_key}")
    typer.echo(f"VAPID_PUBLIC_KEY={keys.public_key}")
    typer.echo("# also set VAPID_SUBJECT=mailto:you@example.com (push services write there)", err=True)
