"""Throttling: per-hour counters by user, agent and scope, and each notification's throttle decision
(herald/domain/throttle.py, herald/adapters/store/throttle.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle_counts",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("agent_id", sa.String(128), primary_key=True),
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "throttle_claims",
        sa.Column("notification_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("throttled", sa.Boolean, nullable=False),
        sa.Column("dropped", sa.JSON, nullable=False),
    )
    op.create_index("ix_throttle_claims_user_agent_window", "throttle_claims", ["user_id", "agent_id", "window_start"])


def downgrade() -> None:
    op.drop_index("ix_throttle_claims_user_agent_window", table_name="throttle_claims")
    op.drop_table("throttle_claims")
    op.drop_table("throttle_counts")
