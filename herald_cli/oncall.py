"""`herald policies set|list|delete` and `herald schedules set|list|who|delete`: escalation policies and on-call
schedules, straight in the store (as `herald groups` does)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from herald.domain.oncall import on_call
from herald.models import ID_REGEX, utcnow
from herald.models.oncall import EscalationPolicy, EscalationPolicyInput, Schedule, ScheduleInput
from herald_cli.common import echo_json, fail, policies_app, schedules_app, validated, with_store

STEP_HELP = "a step: its targets, comma-separated, `=` the seconds to wait for an ack: user:ada,schedule:primary=300"
OVERRIDE_HELP = (
    "USER=START/END: USER is on call from START until END (ISO 8601; without an offset, the schedule's zone)"
)


def _name(name: str) -> None:
    if not re.fullmatch(ID_REGEX, name):
        raise fail("NAME: must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit")


def _step(text: str) -> dict[str, Any]:
    targets, _, seconds = text.rpartition("=")
    if not targets or not seconds.isdigit():
        raise fail(f"--step {text}: {STEP_HELP}")
    return {"targets": [t.strip() for t in targets.split(",") if t.strip()], "ack_within_seconds": int(seconds)}


def _override(text: str) -> dict[str, Any]:
    user, _, span = text.partition("=")
    starts, _, ends = span.partition("/")
    if not user or not starts or not ends:
        raise fail(f"--override {text}: {OVERRIDE_HELP}")
    return {"user_id": user, "starts_at": starts, "ends_at": ends}


def _policy_line(policy: EscalationPolicy) -> str:
    steps = "; then ".join(f"{', '.join(s.targets)} ({s.ack_within_seconds}s)" for s in policy.steps)
    again = f", repeated {policy.repeat}x" if policy.repeat else ""
    return f"{policy.name}: {steps}{again}"


@policies_app.command("set")
def policies_set(
    name: Annotated[str, typer.Argument(help="the policy's name")],
    step: Annotated[list[str], typer.Option("--step", help=STEP_HELP)],
    repeat: Annotated[int, typer.Option(help="run the whole policy again this many times (0-3)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the policy as JSON")] = False,
) -> None:
    """Save an escalation policy whole: its steps in order, and how often it repeats."""
    _name(name)
    body = validated(
        lambda: EscalationPolicyInput.model_validate({"steps": [_step(s) for s in step], "repeat": repeat})
    )
    policy = EscalationPolicy(name=name, updated_at=utcnow(), **body.model_dump())
    with_store(lambda store: store.oncall.put_policy(policy))
    if as_json:
        echo_json(policy.model_dump(mode="json"))
    else:
        typer.echo(f"policy {_policy_line(policy)}")


@policies_app.command("list")
def policies_list(as_json: Annotated[bool, typer.Option("--json", help='print {"policies": [...]}')] = False) -> None:
    """Every escalation policy, by name, with its steps."""
    found: list[EscalationPolicy] = with_store(lambda store: store.oncall.list_policies())
    if as_json:
        echo_json({"policies": [p.model_dump(mode="json") for p in found]})
    elif not found:
        typer.echo("no escalation policies")
    else:
        for policy in found:
            typer.echo(_policy_line(policy))


@policies_app.command("delete")
def policies_delete(name: Annotated[str, typer.Argument(help="the policy's name")]) -> None:
    """Delete an escalation policy: a notification naming it later escalates to nobody."""
    if not with_store(lambda store: store.oncall.delete_policy(name)):
        raise fail(f"no escalation policy {name}", 1)
    typer.echo(f"deleted escalation policy {name}")


def _schedule_line(schedule: Schedule) -> str:
    r = schedule.rotation
    overrides = f", {len(schedule.overrides)} override(s)" if schedule.overrides else ""
    return (
        f"{schedule.name}: {', '.join(r.members)} in turn, {r.shift_hours}h shifts from "
        f"{r.starts_at.isoformat()} {schedule.time_zone}{overrides}"
    )


@schedules_app.command("set")
def schedules_set(
    name: Annotated[str, typer.Argument(help="the schedule's name")],
    members: Annotated[list[str], typer.Argument(help="the rotation's user ids, in turn")],
    time_zone: Annotated[str, typer.Option("--time-zone", help="an IANA time zone: shifts hand over on its clock")],
    shift_hours: Annotated[int, typer.Option("--shift-hours", help="each shift's length, on the wall clock")],
    starts_at: Annotated[
        str, typer.Option("--starts-at", help="the first shift's start (ISO 8601; local to the zone)")
    ],
    override: Annotated[list[str] | None, typer.Option("--override", help=OVERRIDE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the schedule as JSON")] = False,
) -> None:
    """Save an on-call schedule whole: its rotation and its overrides."""
    _name(name)
    spec = {
        "time_zone": time_zone,
        "rotation": {"members": members, "shift_hours": shift_hours, "starts_at": starts_at},
        "overrides": [_override(o) for o in override or []],
    }
    body = validated(lambda: ScheduleInput.model_validate(spec))
    schedule = Schedule(name=name, updated_at=utcnow(), **body.model_dump())
    with_store(lambda store: store.oncall.put_schedule(schedule))
    if as_json:
        echo_json(schedule.model_dump(mode="json"))
    else:
        typer.echo(f"schedule {_schedule_line(schedule)}")


@schedules_app.command("list")
def schedules_list(as_json: Annotated[bool, typer.Option("--json", help='print {"schedules": [...]}')] = False) -> None:
    """Every on-call schedule, by name."""
    found: list[Schedule] = with_store(lambda store: store.oncall.list_schedules())
    if as_json:
        echo_json({"schedules": [s.model_dump(mode="json") for s in found]})
    elif not found:
        typer.echo("no schedules")
    else:
        for schedule in found:
            typer.echo(_schedule_line(schedule))


@schedules_app.command("who")
def schedules_who(
    name: Annotated[str, typer.Argument(help="the schedule's name")],
    at: Annotated[str | None, typer.Option(help="the instant (ISO 8601, with an offset; default now)")] = None,
) -> None:
    """Who is on call on the schedule now, or at --at."""
    when = utcnow()
    if at is not None:
        try:
            when = datetime.fromisoformat(at)
        except ValueError:
            raise fail(f"--at {at}: not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise fail(f"--at {at}: give a UTC offset, e.g. {at}Z")
    found: Schedule | None = with_store(lambda store: store.oncall.get_schedule(name))
    if found is None:
        raise fail(f"no schedule {name}", 1)
    who = on_call(found, when)
    stamp = when.astimezone(UTC).isoformat()
    if who.user_id is None:
        typer.echo(f"nobody is on call on {name} at {stamp} (before its first shift)")
    else:
        typer.echo(f"{who.user_id} is on call on {name} at {stamp}{' (override)' if who.override else ''}")


@schedules_app.command("delete")
def schedules_delete(name: Annotated[str, typer.Argument(help="the schedule's name")]) -> None:
    """Delete an on-call schedule: a step naming it later finds nobody on call."""
    if not with_store(lambda store: store.oncall.delete_schedule(name)):
        raise fail(f"no schedule {name}", 1)
    typer.echo(f"deleted schedule {name}")
