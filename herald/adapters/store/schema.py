"""Tables, in SQLAlchemy Core: the same definitions serve SQLite and PostgreSQL.

They describe the head revision of the migrations (herald/adapters/store/migrations/), which create them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Timestamp = sa.DateTime(timezone=True)


def _per_user_document(name: str) -> sa.Table:
    """One validated JSON document per user (preferences, contact): always read and written whole."""
    return sa.Table(
        name,
        metadata,
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )


preferences = _per_user_document("preferences")
contacts = _per_user_document("contacts")
# The browser inbox's read marks (herald/models/inbox.py InboxReadState).
inbox_state = _per_user_document("inbox_state")

# One row per content key: the first notification to claim it owns it until the window ends.
dedup_keys = sa.Table(
    "dedup_keys",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("notification_id", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),  # epoch seconds: compared, never shown
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

# The final outcome of each notification, for audit after Temporal's retention has passed.
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

# Web Push subscriptions: one row per browser (endpoint); a user may have several.
push_subscriptions = sa.Table(
    "push_subscriptions",
    metadata,
    sa.Column("endpoint", sa.String(2048), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False, index=True),
    sa.Column("subscription", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# What a provider reported after accepting a message (Twilio status callbacks), by its message id.
provider_receipts = sa.Table(
    "provider_receipts",
    metadata,
    sa.Column("provider_message_id", sa.String(256), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("error_code", sa.String(16)),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Bearer tokens, stored as SHA-256 hashes: `herald tokens issue <user>` and `herald keys issue <agent>`.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "user" or "agent"
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # An agent key's own quota (`herald keys issue --rate/--burst`): requests per second and burst; NULL is
    # HERALD_AGENT_RATE / HERALD_AGENT_BURST. Revision 0003.
    sa.Column("rate", sa.Float),
    sa.Column("burst", sa.Integer),
)

# Trigger rules, one validated document per rule name.
rules = sa.Table(
    "rules",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Counters that say "something changed": `rules` is bumped by every rule write, so each process's compiled
# rule cache can tell cheaply whether to reload.
versions = sa.Table(
    "versions",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

# What each notification said (title, body), written with its first delivery attempt: the inbox shows it in the
# user's history beside the outcome. Personal data, like contacts: kept here, aged out by the retention cleanup.
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

# Which digest notification carried each digested notification (kept apart from `notifications`, so the
# notification's own outcome and its digest can be written in either order).
digested = sa.Table(
    "digested",
    metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("digest_id", sa.String(128), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

# Keyset paging of the audit list (newest first, overall and per user or agent) and the retention cleanup's
# "older than" scans. (A change to any table here, or in answers.py, is a new revision under migrations/versions/.)
AUDIT_INDEXES = [
    sa.Index("ix_notifications_completed", notifications.c.completed_at, notifications.c.notification_id),
    sa.Index("ix_notifications_user_completed", notifications.c.user_id, notifications.c.completed_at),
    sa.Index("ix_notifications_agent_completed", notifications.c.agent_id, notifications.c.completed_at),
    sa.Index("ix_delivery_log_finished", delivery_log.c.finished_at),
    sa.Index("ix_provider_receipts_updated", provider_receipts.c.updated_at),
    sa.Index("ix_digested_created", digested.c.created_at),
    sa.Index("ix_ops_alerts_created", ops_alerts.c.created_at),
    sa.Index("ix_dedup_keys_expires", dedup_keys.c.expires_at),
]

# Silences (herald/models/silences.py): each matcher a column of its own (null: matches anything), so the check a
# notification makes reads only the silences in force for its agent and user, and listings filter by them.
silences = sa.Table(
    "silences",
    metadata,
    sa.Column("silence_id", sa.String(128), primary_key=True),
    sa.Column("agent_id", sa.String(128), index=True),
    sa.Column("rule", sa.String(128)),
    sa.Column("user_id", sa.String(128), index=True),
    sa.Column("dedup_key", sa.String(200)),
    sa.Column("max_priority", sa.String(16), nullable=False),
    sa.Column("starts_at", Timestamp, nullable=False),
    sa.Column("ends_at", Timestamp, nullable=False, index=True),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(160), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# Subscriptions (herald/models/subscriptions.py): where to POST which events, and the delivery state SubscriptionWorkflow
# keeps (failures in a row, the last error bounded, when it was disabled). `events` is a JSON list of event types.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("agent_id", sa.String(128), index=True),
    sa.Column("owner", sa.String(160), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(300)),
    sa.Column("disabled_at", Timestamp),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Escalation policies and on-call schedules (herald/models/oncall.py): each kept whole as JSON under its name (read
# whole, by name: a step's targets, a schedule's rotation and overrides are never queried apart).
escalation_policies = sa.Table(
    "escalation_policies",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Throttling (herald/domain/throttle.py): one counter per (user, agent, scope, window), scope `*` for the agent-wide
# limit or a channel's name, claimed under a row lock; and each notification's decision, so a retried claim repeats
# it instead of counting twice. Rows of past windows are pruned by the next claim for the same user and agent.
throttle_counts = sa.Table(
    "throttle_counts",
    metadata,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("agent_id", sa.String(128), primary_key=True),
    sa.Column("scope", sa.String(32), primary_key=True),
    sa.Column("window_start", Timestamp, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
throttle_claims = sa.Table(
    "throttle_claims",
    metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("agent_id", sa.String(128), nullable=False),
    sa.Column("window_start", Timestamp, nullable=False),
    sa.Column("throttled", sa.Boolean, nullable=False),
    sa.Column("dropped", sa.JSON, nullable=False),
    sa.Index("ix_throttle_claims_user_agent_window", "user_id", "agent_id", "window_start"),
)

# Groups (herald/models/groups.py): a name for a list of users (teams). `members` is a JSON list of user ids, in the
# order saved; a group notification fans out as one notification per member.
groups = sa.Table(
    "groups",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("members", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)
