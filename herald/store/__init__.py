"""Persistence: SQLite by default, PostgreSQL by URL, one code path."""

from herald.store.sql import Store

__all__ = ["Store"]
