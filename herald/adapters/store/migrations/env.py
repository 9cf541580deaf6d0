"""Run by Alembic on the connection herald/adapters/store/migrate.py hands it (never from a URL of its own)."""

from __future__ import annotations

from alembic import context

from herald.adapters.store import answers, schema

assert answers.used_answer_links.metadata is schema.metadata  # answers' tables are on the one metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    # SQLite alters a table by copying it; Alembic's batch mode does that for a later revision that needs it.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
