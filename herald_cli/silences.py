"""`herald silence add|list|expire`: silences, straight in the store (as `herald rules` does), made by `cli`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from herald.domain.silences import SilenceProblem, new_silence, state_of
from herald.models import Silence, SilenceInput, utcnow
from herald_cli.common import echo_json, fail, silence_app, validated, with_store

_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90m`, `2h`, `1d`, `30s`: a whole number and a unit."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError("expected a whole number and a unit: 30s, 90m, 2h, 1d")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def silence_fields(
    matchers: dict[str, str | None], starts_at: str | None, ends_at: str | None, duration: str | None, comment: str
) -> dict[str, Any]:
    """The SilenceInput fields the options give: `--for` counts from --starts-at (or now), instead of --ends-at."""
    if (ends_at is None) == (duration is None):
        raise fail("give --ends-at or --for (one of them)")
    fields: dict[str, Any] = {"matchers": {k: v for k, v in matchers.items() if v is not None}, "comment": comment}
    if starts_at is not None:
        fields["starts_at"] = starts_at
    if ends_at is not None:
        fields["ends_at"] = ends_at
    else:
        try:
            length = parse_duration(duration or "")
        except ValueError as exc:
            raise fail(f"--for: {exc}") from None
        start = utcnow()
        if starts_at is not None:
            try:
                start = datetime.fromisoformat(starts_at)
            except ValueError:
                raise fail("--starts-at: must be an ISO 8601 date and time with a time zone") from None
        fields["ends_at"] = (start + length).isoformat()
    return fields


def silence_lines(silences: list[Silence], now: datetime) -> list[str]:
    """Id, state, what it matches, until when, and why, in aligned columns."""
    header = ("ID", "STATE", "MATCHES", "ENDS", "COMMENT")
    rows = []
    for s in silences:
        m = s.matchers
        named = [f"{k}={v}" for k, v in (("agent", m.agent_id), ("rule", m.rule), ("user", m.user_id)) if v]
        named += [f"dedup_key={m.dedup_key}"] if m.dedup_key else []
        named.append(f"<={m.max_priority.value}")
        comment = " ".join(s.comment.split())
        rows.append(
            (
                s.silence_id,
                state_of(s, now).value,
                " ".join(named),
                s.ends_at.isoformat(timespec="seconds"),
                comment if len(comment) <= 40 else comment[:39] + "…",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


@silence_app.command("add")
def silence_add(
    comment: Annotated[str, typer.Option(help="why (1-500 characters)")],
    agent: Annotated[str | None, typer.Option(help="silence this agent's notifications")] = None,
    rule: Annotated[str | None, typer.Option(help="those this rule fired")] = None,
    user: Annotated[str | None, typer.Option(help="those to this user")] = None,
    dedup_key: Annotated[str | None, typer.Option(help="those with this dedup_key")] = None,
    max_priority: Annotated[
        str, typer.Option(help="the highest priority silenced: low, medium, high (default), critical")
    ] = "high",
    starts_at: Annotated[str | None, typer.Option(help="ISO 8601 with a time zone (default: now)")] = None,
    ends_at: Annotated[str | None, typer.Option(help="ISO 8601 with a time zone")] = None,
    duration: Annotated[str | None, typer.Option("--for", help="instead of --ends-at: 30m, 2h, 1d")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the silence as JSON")] = False,
) -> None:
    """Silence notifications: every option given must match (at least one of --agent, --rule, --user, --dedup-key).
    Prints the silence's id."""
    matchers = {"agent_id": agent, "rule": rule, "user_id": user, "dedup_key": dedup_key, "max_priority": max_priority}
    fields = silence_fields(matchers, starts_at, ends_at, duration, comment)
    body = validated(lambda: SilenceInput.model_validate(fields))
    try:
        silence = new_silence(body, "cli", utcnow())
    except SilenceProblem as exc:
        raise fail(str(exc)) from None
    with_store(lambda store: store.silences.put_silence(silence))
    if as_json:
        echo_json(silence.model_dump(mode="json"))
    else:
        typer.echo(silence.silence_id)


@silence_app.command("list")
def silence_list(
    show_all: Annotated[bool, typer.Option("--all", help="also those that have ended")] = False,
    agent: Annotated[str | None, typer.Option(help="only those naming this agent")] = None,
    user: Annotated[str | None, typer.Option(help="only those naming this user")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='print {"silences": [...]}')] = False,
) -> None:
    """Silences, newest first: pending and active ones (ended ones too with --all)."""
    now = utcnow()
    found: list[Silence] = with_store(
        lambda store: store.silences.list_silences(now, agent_id=agent, user_id=user, include_expired=show_all)
    )
    if as_json:
        echo_json({"silences": [{**s.model_dump(mode="json"), "state": state_of(s, now).value} for s in found]})
    elif not found:
        typer.echo("no silences")
    else:
        for line in silence_lines(found, now):
            typer.echo(line)


@silence_app.command("expire")
def silence_expire(silence_id: Annotated[str, typer.Argument(help="the silence's id")]) -> None:
    """End a silence now: notifications from then on are delivered. Expiring it again changes nothing."""
    expired: Silence | None = with_store(lambda store: store.silences.expire_silence(silence_id, utcnow()))
    if expired is None:
        raise fail(f"no silence {silence_id}", 1)
    typer.echo(f"expired silence {silence_id} at {expired.ends_at.isoformat(timespec='seconds')}")
