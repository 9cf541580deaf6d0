"""`herald groups set|list|delete`: groups (teams), straight in the store (as `herald subscriptions` does)."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from herald.models import ID_REGEX, Group, GroupInput, utcnow
from herald_cli.common import echo_json, fail, groups_app, validated, with_store


@groups_app.command("set")
def groups_set(
    name: Annotated[str, typer.Argument(help="the group's name")],
    members: Annotated[list[str], typer.Argument(help="the members' user ids, each once")],
    as_json: Annotated[bool, typer.Option("--json", help="print the group as JSON")] = False,
) -> None:
    """Save a group's members (a new group, or new members for an existing one)."""
    if not re.fullmatch(ID_REGEX, name):
        raise fail("NAME: must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit")
    body = validated(lambda: GroupInput.model_validate({"members": members}))
    now = utcnow()
    saved: Group = with_store(
        lambda store: store.groups.put(Group(name=name, members=body.members, created_at=now, updated_at=now))
    )
    if as_json:
        echo_json(saved.model_dump(mode="json"))
    else:
        typer.echo(f"group {saved.name}: {', '.join(saved.members)}")


@groups_app.command("list")
def groups_list(as_json: Annotated[bool, typer.Option("--json", help='print {"groups": [...]}')] = False) -> None:
    """Every group, by name, with its members."""
    found: list[Group] = with_store(lambda store: store.groups.list())
    if as_json:
        echo_json({"groups": [g.model_dump(mode="json") for g in found]})
    elif not found:
        typer.echo("no groups")
    else:
        for group in found:
            typer.echo(f"{group.name}: {', '.join(group.members)}")


@groups_app.command("delete")
def groups_delete(name: Annotated[str, typer.Argument(help="the group's name")]) -> None:
    """Delete a group: a notification to it is refused from then on."""
    deleted: bool = with_store(lambda store: store.groups.delete(name))
    if not deleted:
        raise fail(f"no group {name}", 1)
    typer.echo(f"deleted group {name}")
