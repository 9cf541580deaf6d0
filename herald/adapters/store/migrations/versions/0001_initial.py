"""The schema Herald had before it used migrations: every table and index of schema.py and answers.py then.

A frozen copy (never edit it; change the tables in a new revision). Its upgrade is what Store.open used to do,
`create_all` plus the audit indexes, both with checkfirst: on an empty database it creates everything, and on a
database that Store.open made before migrations existed (no alembic_version) it adds only what an older Herald
had not yet created, so `herald db upgrade` adopts such a database as this revision instead of failing on
"table exists".

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

metadata = sa.MetaData()
Timestamp = sa.DateTime(timezone=True)


def _per_user_document(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )


preferences = _per_user_document("preferences")
contacts = _per_user_document("contacts")
inbox_state = _per_user_document("inbox_state")

dedup_keys = sa.Table(
    "dedup_keys",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("notification_id", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

delivery_log = sa.Table(
    "delivery_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.String(128), nullable=False, index=True),
    sa.Column("workflow_id", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(220), nullable=False, index=True),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("error_type", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("provider_message_id", sa.String(256)),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp, nullable=False),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("workflow_id", sa.String(200), nullable=False),
    sa.Column("agent_id", sa.String(128), nullable=False, index=True),
    sa.Column("user_id", sa.String(128), nullable=False, index=True),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("outcome", sa.JSON, nullable=False),
    sa.Column("completed_at", Timestamp, nullable=False),
)

ops_alerts = sa.Table(
    "ops_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.String(128), nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("notification_id", "kind"),
)

push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.String(2048), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False, index=True),
    sa.Column("subscription", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

provider_receipts = sa.Table(
    "provider_receipts",
    metadata,
    sa.Column("provider_message_id", sa.String(256), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("error_code", sa.String(16)),
    sa.Column("updated_at", Timestamp, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

rules = sa.Table(
    "rules",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

notification_content = sa.Table(
    "notification_content",
    metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False, index=True),
    sa.Column("agent_id", sa.String(128), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("stored_at", Timestamp, nullable=False, index=True),
)

digested = sa.Table(
    "digested",
    metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("digest_id", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

used_answer_links = sa.Table(
    "used_answer_links",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("notification_id", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

sms_questions = sa.Table(
    "sms_questions",
    metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("phone_key", sa.String(64), nullable=False, index=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("action_ids", sa.JSON, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

snoozes = sa.Table(
    "snoozes",
    metadata,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("scope", sa.String(160), primary_key=True),
    sa.Column("until", Timestamp, nullable=False),
)

refused_answers = sa.Table(
    "refused_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.String(128), nullable=False, index=True),
    sa.Column("action_id", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
)

# The audit indexes, which Store.open added to databases created before them.
sa.Index("ix_notifications_completed", notifications.c.completed_at, notifications.c.notification_id)
sa.Index("ix_notifications_user_completed", notifications.c.user_id, notifications.c.completed_at)
sa.Index("ix_notifications_agent_completed", notifications.c.agent_id, notifications.c.completed_at)
sa.Index("ix_delivery_log_finished", delivery_log.c.finished_at)
sa.Index("ix_provider_receipts_updated", provider_receipts.c.updated_at)
sa.Index("ix_digested_created", digested.c.created_at)
sa.Index("ix_ops_alerts_created", ops_alerts.c.created_at)
sa.Index("ix_dedup_keys_expires", dedup_keys.c.expires_at)


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, checkfirst=True)
    # create_all adds indexes only with the tables it creates; an older database's tables get theirs here.
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            index.create(bind, checkfirst=True)


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
