"""Persistence: SQLite by default, PostgreSQL by URL, one code path."""

from herald.store.sql import RulesDiff, Store

__all__ = ["RulesDiff", "Store"]
