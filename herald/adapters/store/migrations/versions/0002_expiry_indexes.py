"""Indexes for answers' expiry scans: AnswerRepository.purge_expired deletes used answer links, SMS questions and
snoozes by their end time, which scanned each whole table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: a database adopted by 0001 (made before migrations) never has them, but a copy of a newer one
    # whose alembic_version was lost may; adopting it must not fail on "index exists".
    op.create_index("ix_used_answer_links_expires", "used_answer_links", ["expires_at"], if_not_exists=True)
    op.create_index("ix_sms_questions_expires", "sms_questions", ["expires_at"], if_not_exists=True)
    op.create_index("ix_snoozes_until", "snoozes", ["until"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_snoozes_until", table_name="snoozes")
    op.drop_index("ix_sms_questions_expires", table_name="sms_questions")
    op.drop_index("ix_used_answer_links_expires", table_name="used_answer_links")
