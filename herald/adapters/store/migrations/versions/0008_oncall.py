"""Escalation policies and on-call schedules (herald/models/oncall.py), each kept whole as JSON under its name.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("escalation_policies", "schedules"):
        op.create_table(
            table,
            sa.Column("name", sa.String(128), primary_key=True),
            sa.Column("spec", sa.JSON, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("schedules")
    op.drop_table("escalation_policies")
