"""Persistence: SQLite by default, PostgreSQL by URL, one code path."""

from herald.store.sql import PURGED_TABLES, RecordedOutcome, RulesDiff, Store

__all__ = ["PURGED_TABLES", "RecordedOutcome", "RulesDiff", "Store"]
