"""The `herald` command line: run the stack, send notifications and events, read outcomes, manage preferences and rules."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from herald.config import Settings
from herald.models import (
    ID_REGEX,
    AgentEvent,
    AgentNotification,
    ChannelName,
    Contact,
    MetricValue,
    NotificationStatus,
    Preferences,
    Priority,
    TriggerRule,
)
from herald.store.sql import RulesDiff
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
codec_app = typer.Typer(help="Keys that encrypt Temporal payloads (HERALD_CODEC_KEYS).", no_args_is_help=True)
app.add_typer(codec_app, name="codec")
rules_app = typer.Typer(help="Trigger rules: which agent events become notifications.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

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
    auth: Annotated[
        bool, typer.Option("--auth", help="require bearer tokens as `herald api` does (dev is open by default)")
    ] = False,
) -> None:
    """Run Temporal's dev server, a worker and the API together (data under HERALD_HOME)."""
    from herald.dev import DevPorts, main
    from herald.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format or "text", settings.log_level)
    main(settings, DevPorts(temporal=temporal_port, ui=ui_port, api=api_port), demo, auth)


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
    """Serve the HTTP API (FastAPI, OpenAPI at /docs). Every call needs a bearer token (see `keys`, `tokens`)."""
    import uvicorn

    from herald.api.app import create_app
    from herald.logs import configure_logging

    settings = Settings().model_copy(update={"auth": True})
    configure_logging(settings.log_format or "json", settings.log_level)
    if settings.admin_key is None:
        typer.echo("# HERALD_ADMIN_KEY is unset: /v1/rules is closed; manage rules with `herald rules`", err=True)
    # log_config=None keeps the JSON logging configured above; the API logs each request itself.
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        access_log=False,
    )


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


def outcome_table(items: list[Any]) -> list[str]:
    """Recorded notifications (NotificationSummary) as aligned columns, newest first."""
    header = ("RECORDED", "NOTIFICATION", "STATUS", "PRIORITY", "AGENT", "USER", "CHANNELS")
    rows = [
        (
            f"{item.completed_at:%Y-%m-%d %H:%M:%S}",
            item.notification_id,
            item.status.value,
            item.priority.value,
            item.agent_id,
            item.user_id,
            ",".join(f"{channel.value}:{result.status.value}" for channel, result in item.channels.items()) or "-",
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


def _list_notifications(
    user: str | None,
    agent: str | None,
    status: NotificationStatus | None,
    priority: Priority | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
) -> None:
    from herald.api.views import InvalidCursor, list_notifications

    async def _load(store: Any) -> Any:
        return await list_notifications(
            store,
            user_id=user,
            agent_id=agent,
            status=status,
            priority=priority,
            since=since,
            cursor=cursor,
            limit=limit,
        )

    try:
        page = _with_store(_load)
    except InvalidCursor as exc:
        raise fail(f"--cursor: {exc}") from None
    if not page.items:
        typer.echo("no recorded notifications match")
        return
    for line in outcome_table(page.items):
        typer.echo(line)
    if page.next_cursor:
        typer.echo(f"# more: --cursor {page.next_cursor}", err=True)


@app.command()
@skips_teardown
def status(
    notification_id: Annotated[
        str | None, typer.Argument(help="the notification's id; without it, list recorded notifications")
    ] = None,
    user: Annotated[str | None, typer.Option(help="list: only this user's")] = None,
    agent: Annotated[str | None, typer.Option(help="list: only this agent's")] = None,
    status: Annotated[NotificationStatus | None, typer.Option(help="list: only this final status")] = None,
    priority: Annotated[Priority | None, typer.Option(help="list: only this priority")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="list: recorded at or after this time (UTC unless it says)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="list: at most this many")] = 20,
    cursor: Annotated[str | None, typer.Option(help="list: continue where the last list stopped")] = None,
) -> None:
    """Print a notification's status, channels and every attempt; without an id, list finished notifications."""
    if notification_id is None:
        _list_notifications(user, agent, status, priority, since, limit, cursor)
        return

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


@codec_app.command("generate")
def codec_generate(
    key_id: Annotated[
        str | None, typer.Option(help="the id stored beside each payload (default: k<UTC time>, e.g. k20250301T120000)")
    ] = None,
) -> None:
    """Print a new HERALD_CODEC_KEYS entry (keyid:base64key, a random 32-byte AES key)."""
    from herald.codec import CodecConfigError, new_codec_key

    try:
        key = new_codec_key(key_id)
    except CodecConfigError as exc:
        raise fail(f"--key-id: {exc}") from None
    typer.echo(key.entry())
    typer.echo(
        "# put it first in HERALD_CODEC_KEYS (it encrypts from then on) and keep the older entries after it "
        "(they still decrypt old histories): HERALD_CODEC_KEYS=<new>,<old>",
        err=True,
    )


# --- events ------------------------------------------------------------------------------------------


def parse_metric(text: str) -> tuple[str, MetricValue]:
    """`name=value` -> (name, value): true/false are booleans, then integers, finite floats, else the string."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise ValueError("expected name=value")
    value: MetricValue = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                number = float(raw)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    value = number
    return name.strip(), value


def event_fields(agent: str | None, metrics: list[str], event_id: str | None, from_file: Any | None) -> dict[str, Any]:
    """The AgentEvent fields from `--json FILE` (an event object) overlaid with --agent, --metric, --event-id."""
    fields: dict[str, Any] = {}
    if from_file is not None:
        if not isinstance(from_file, dict):
            raise fail('--json: expected an event object {"agent_id", "metrics", "event_id"}')
        fields.update(from_file)
    if agent is not None:
        if fields.get("agent_id", agent) != agent:
            raise fail("--agent and the file's agent_id differ: give one")
        fields["agent_id"] = agent
    if metrics:
        merged = dict(fields["metrics"]) if isinstance(fields.get("metrics"), dict) else {}
        for text in metrics:
            try:
                name, value = parse_metric(text)
            except ValueError as exc:
                raise fail(f"--metric: {exc}") from None
            merged[name] = value
        fields["metrics"] = merged
    if event_id is not None:
        fields["event_id"] = event_id
    return fields


@app.command()
@skips_teardown
def event(
    agent: Annotated[str | None, typer.Option(help="the agent reporting the metrics")] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="name=value (true/false, a number, else a string); repeat")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help='an event file: {"agent_id", "metrics": {...}, "event_id"}')
    ] = None,
    event_id: Annotated[str | None, typer.Option(help="send the same id again to retry safely")] = None,
) -> None:
    """Report an agent's metrics; matching rules fire. Prints what fired and what a cooldown held back."""
    fields = event_fields(agent, metric or [], event_id, read_json(json_file) if json_file else None)
    agent_event = validated(lambda: AgentEvent.model_validate(fields))

    async def _emit(store: Any) -> Any:
        from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
        from temporalio.service import RPCError

        from herald.api.events import emit_event
        from herald.rule_cache import RuleCache
        from starter.client import HeraldClient

        settings = Settings()

        async def connect() -> HeraldClient:
            try:
                return await HeraldClient.connect(settings)
            except (RPCError, RuntimeError, OSError):
                raise fail(f"cannot reach Temporal at {settings.temporal_address}", 1) from None

        try:
            return await emit_event(agent_event, RuleCache(store), connect)
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise fail(f"Temporal did not take the event; retry with --event-id {agent_event.event_id}", 1) from None

    echo_json(_with_store(_emit).model_dump(mode="json"))


# --- rules -------------------------------------------------------------------------------------------


def rule_entries(data: Any) -> list[Any]:
    """A rules file holds a list of rules, or `{"rules": [...]}`."""
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if not isinstance(data, list):
        raise ValueError('expected a list of rules, or {"rules": [...]} (an empty set is `rules: []`)')
    return data


def _label(index: int, entry: Any) -> str:
    """The rule's name when it has a usable one, else its position in the file."""
    name = entry.get("name") if isinstance(entry, dict) else None
    return name if isinstance(name, str) and re.fullmatch(ID_REGEX, name) else f"#{index + 1}"


def check_rules(entries: list[Any]) -> tuple[list[TriggerRule], list[str]]:
    """Validate every rule with the model and compile it; problems as `rule <name>: <field> <message>`."""
    from herald.rules import RuleProblem, compile_rule

    rules: list[TriggerRule] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        label = _label(index, entry)
        try:
            rule = TriggerRule.model_validate(entry)
        except ValidationError as exc:
            problems += [f"rule {label}: {p.field or 'rule'} {p.message}" for p in describe(exc.errors())]
            continue
        if rule.name in seen:
            problems.append(f"rule {label}: name appears more than once in the file")
            continue
        seen.add(rule.name)
        try:
            compile_rule(rule)
        except RuleProblem as problem:
            problems.append(f"rule {label}: {problem.field} {problem.message}")
            continue
        rules.append(rule)
    return rules, problems


def rules_diff(current: list[TriggerRule], wanted: list[TriggerRule]) -> RulesDiff:
    """What replacing `current` by `wanted` would do (the same comparison `Store.replace_rules` makes)."""
    have = {rule.name: rule for rule in current}
    want = {rule.name: rule for rule in wanted}
    both = set(have) & set(want)
    return RulesDiff(
        created=sorted(set(want) - set(have)),
        updated=sorted(n for n in both if want[n] != have[n]),
        deleted=sorted(set(have) - set(want)),
        unchanged=sorted(n for n in both if want[n] == have[n]),
    )


def diff_lines(diff: RulesDiff) -> list[str]:
    lines = [
        f"{label}: {', '.join(names)}"
        for label, names in (("created", diff.created), ("updated", diff.updated), ("deleted", diff.deleted))
        if names
    ]
    return lines or ["no changes"]


def _read_rules_file(file: Path) -> Any:
    import yaml

    if file.suffix.lower() == ".json":
        return read_json(file)
    try:
        return yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise fail(f"{file}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise fail(f"{file}: not valid YAML{where}") from None


@rules_app.command("apply")
def rules_apply(
    file: Annotated[Path, typer.Argument(help="rules.yaml or .json: the whole set of rules")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would change; change nothing")] = False,
) -> None:
    """Make the stored rules exactly FILE's: create, update and delete to match. All or nothing."""
    try:
        entries = rule_entries(_read_rules_file(file))
    except ValueError as exc:
        raise fail(f"{file}: {exc}") from None
    rules, problems = check_rules(entries)
    if problems:
        for problem in problems:
            typer.echo(f"{file}: {problem}", err=True)
        typer.echo(f"# {len(problems)} problem(s); no rule was changed", err=True)
        raise typer.Exit(2)

    async def _apply(store: Any) -> RulesDiff:
        if dry_run:
            return rules_diff(await store.list_rules(), rules)
        diff: RulesDiff = await store.replace_rules(rules)
        return diff

    for line in diff_lines(_with_store(_apply)):
        typer.echo(line)
    if dry_run:
        typer.echo("dry run: nothing applied")


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def rules_table(rules: list[TriggerRule]) -> list[str]:
    """Name, agent, condition, cooldown and enabled, in aligned columns."""
    header = ("NAME", "AGENT", "CONDITION", "COOLDOWN", "ENABLED")
    rows = [
        (r.name, r.agent_id, _shorten(r.condition, 60), f"{r.cooldown_seconds}s", "yes" if r.enabled else "no")
        for r in rules
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


@rules_app.command("list")
def rules_list(
    as_json: Annotated[bool, typer.Option("--json", help='print {"rules": [...]}, as `rules apply` reads')] = False,
) -> None:
    """Every rule: name, agent, condition, cooldown, enabled."""
    rules: list[TriggerRule] = _with_store(lambda store: store.list_rules())
    if as_json:
        echo_json({"rules": [rule.model_dump(mode="json", exclude_none=True) for rule in rules]})
    elif not rules:
        typer.echo("no rules")
    else:
        for line in rules_table(rules):
            typer.echo(line)


@rules_app.command("delete")
def rules_delete(name: Annotated[str, typer.Argument(help="the rule's name")]) -> None:
    """Delete one rule (a later `rules apply` of a file that has it brings it back)."""
    if not _with_store(lambda store: store.delete_rule(name)):
        raise fail(f"no rule {name}", 1)
    typer.echo(f"deleted rule {name}")
