"""Trigger rules and agent events: `herald rules apply|list|delete`, `herald event`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from herald.adapters.store import RulesDiff
from herald.config import Settings
from herald.domain.validation import describe
from herald.models import (
    ID_REGEX,
    AgentEvent,
    MetricValue,
    TriggerRule,
)
from herald_cli.common import app, echo_json, fail, read_json, rules_app, skips_teardown, validated, with_store


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
    """Report an agent's metrics; matching rules fire. Prints what fired, what a cooldown held back and what it resolved."""
    fields = event_fields(agent, metric or [], event_id, read_json(json_file) if json_file else None)
    agent_event = validated(lambda: AgentEvent.model_validate(fields))

    async def _emit(store: Any) -> Any:
        from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
        from temporalio.service import RPCError

        from herald.api.events import emit_event
        from herald.services.rule_cache import RuleCache
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

    echo_json(with_store(_emit).model_dump(mode="json"))


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
    from herald.domain.rules import RuleProblem, compile_rule

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
    """What replacing `current` by `wanted` would do (the same comparison `RuleRepository.replace_rules` makes)."""
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
            return rules_diff(await store.rules.list_rules(), rules)
        diff: RulesDiff = await store.rules.replace_rules(rules)
        return diff

    for line in diff_lines(with_store(_apply)):
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
    rules: list[TriggerRule] = with_store(lambda store: store.rules.list_rules())
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
    if not with_store(lambda store: store.rules.delete_rule(name)):
        raise fail(f"no rule {name}", 1)
    typer.echo(f"deleted rule {name}")
