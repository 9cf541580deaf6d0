"""Silences: time windows in which matching notifications end `silenced` (herald/models/silences.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("silence_id", sa.String(128), primary_key=True),
        sa.Column("agent_id", sa.String(128)),
        sa.Column("rule", sa.String(128)),
        sa.Column("user_id", sa.String(128)),
        sa.Column("dedup_key", sa.String(200)),
        sa.Column("max_priority", sa.String(16), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_silences_agent_id", "silences", ["agent_id"])
    op.create_index("ix_silences_user_id", "silences", ["user_id"])
    op.create_index("ix_silences_ends_at", "silences", ["ends_at"])


def downgrade() -> None:
    op.drop_index("ix_silences_ends_at", table_name="silences")
    op.drop_index("ix_silences_user_id", table_name="silences")
    op.drop_index("ix_silences_agent_id", table_name="silences")
    op.drop_table("silences")
