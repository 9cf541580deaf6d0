"""`herald subscriptions set|list|delete`: subscriptions, straight in the store (as `herald silence` does), owned by
`cli`. The URL goes through the SSRF guard as the API's does (HERALD_ALLOW_PRIVATE_WEBHOOKS lets a receiver on this
machine through)."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from herald.adapters.netguard import UnsafeURL
from herald.config import Settings
from herald.domain.subscriptions import state_of
from herald.models import ID_REGEX, Subscription, SubscriptionEventType, SubscriptionInput
from herald.services.subscriptions import save_subscription
from herald_cli.common import echo_json, fail, subscriptions_app, validated, with_store

EVENT_NAMES = ", ".join(e.value for e in SubscriptionEventType)


def subscription_lines(subscriptions: list[Subscription]) -> list[str]:
    """Name, state, failures in a row, agent, events, and the last error, in aligned columns (never the URL, which
    may hold a token: `--json` shows it)."""
    header = ("NAME", "STATE", "FAILURES", "AGENT", "EVENTS", "LAST ERROR")
    rows = [
        (
            s.name,
            state_of(s).value,
            str(s.failures),
            s.agent_id or "*",
            ",".join(e.value for e in s.events),
            s.last_error or "",
        )
        for s in subscriptions
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]


@subscriptions_app.command("set")
def subscriptions_set(
    name: Annotated[str, typer.Argument(help="the subscription's name")],
    url: Annotated[str, typer.Option(help="the http(s) URL that receives the signed POSTs")],
    event: Annotated[list[str], typer.Option("--event", help=f"an event type, repeatable: {EVENT_NAMES}")],
    agent: Annotated[str | None, typer.Option(help="only this agent's notifications and heartbeats")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the subscription as JSON")] = False,
) -> None:
    """Save a subscription (enabled again, its failures cleared, if it was disabled)."""
    if not re.fullmatch(ID_REGEX, name):
        raise fail("NAME: must be 1-128 characters of letters, digits and . _ : @ -, starting with a letter or digit")
    body = validated(lambda: SubscriptionInput.model_validate({"url": url, "events": event, "agent_id": agent}))
    allow_private = Settings().webhook.allow_private_webhooks
    try:
        saved: Subscription = with_store(
            lambda store: save_subscription(store, name, body, "cli", allow_private=allow_private)
        )
    except UnsafeURL as exc:
        raise fail(f"--url {exc}") from None
    if as_json:
        echo_json(saved.model_dump(mode="json"))
    else:
        typer.echo(f"subscription {saved.name}: {', '.join(e.value for e in saved.events)}")


@subscriptions_app.command("list")
def subscriptions_list(
    agent: Annotated[str | None, typer.Option(help="only those naming this agent")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='print {"subscriptions": [...]}')] = False,
) -> None:
    """Subscriptions by name, each enabled or disabled (after it kept failing), with its failures and last error."""
    found: list[Subscription] = with_store(lambda store: store.subscriptions.list_subscriptions(agent_id=agent))
    if as_json:
        echo_json({"subscriptions": [{**s.model_dump(mode="json"), "state": state_of(s).value} for s in found]})
    elif not found:
        typer.echo("no subscriptions")
    else:
        for line in subscription_lines(found):
            typer.echo(line)


@subscriptions_app.command("delete")
def subscriptions_delete(name: Annotated[str, typer.Argument(help="the subscription's name")]) -> None:
    """Delete a subscription: nothing more is posted to it."""
    deleted: bool = with_store(lambda store: store.subscriptions.delete_subscription(name))
    if not deleted:
        raise fail(f"no subscription {name}", 1)
    typer.echo(f"deleted subscription {name}")
