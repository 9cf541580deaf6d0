"""The store's schema: `herald db upgrade` (migrations in herald/adapters/store/migrations/)."""

from __future__ import annotations

import asyncio

import typer

from herald.config import Settings
from herald_cli.common import db_app


def shown_url(url: str) -> str:
    """The database URL without its password (it is printed)."""
    import sqlalchemy as sa

    return sa.engine.make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade() -> None:
    """Upgrade the database to this Herald's schema revision (run it before starting an upgraded worker or API)."""
    from herald.adapters.store import Store

    url = Settings().resolved_database_url
    done = asyncio.run(Store.upgrade(url))
    where = shown_url(url)
    if done.adopted:
        typer.echo(f"{where}: adopted a database made before migrations as 0001, then upgraded to {done.after}")
    elif done.before is None:
        typer.echo(f"{where}: created the schema at {done.after}")
    elif done.changed:
        typer.echo(f"{where}: upgraded the schema from {done.before} to {done.after}")
    else:
        typer.echo(f"{where}: already at {done.after}, nothing to do")
