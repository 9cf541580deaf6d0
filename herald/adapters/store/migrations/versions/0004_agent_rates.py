"""Agent keys' own quotas: `herald keys issue --rate N --burst M` keeps them beside the key; NULL (every key issued
before, and keys issued without the options) means HERALD_AGENT_RATE / HERALD_AGENT_BURST.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns with no default: a plain ADD COLUMN on SQLite and PostgreSQL alike, no table copy.
    op.add_column("api_tokens", sa.Column("rate", sa.Float(), nullable=True))
    op.add_column("api_tokens", sa.Column("burst", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("burst")
        batch.drop_column("rate")
