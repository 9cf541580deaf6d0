"""Keys Herald needs: VAPID for Web Push, and the payload codec's."""

from __future__ import annotations

from typing import Annotated

import typer

from herald_cli.common import codec_app, fail, vapid_app


@vapid_app.command("generate")
def vapid_generate() -> None:
    """Print a new VAPID key pair as environment lines (the public key is the browser's applicationServerKey)."""
    from herald.adapters.vapid import generate_vapid_keys

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
    from herald.adapters.codec import CodecConfigError, new_codec_key

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
