"""Persistence: SQLite by default, PostgreSQL by URL, one code path."""

# answers' tables join the one metadata on import (the migrations' env and their test compare against it).
from herald.adapters.store.answers import AnswerStore, SmsQuestion
from herald.adapters.store.migrate import SchemaOutOfDate, Upgraded
from herald.adapters.store.sql import PURGED_TABLES, RecordedOutcome, RulesDiff, Store

__all__ = [
    "PURGED_TABLES",
    "AnswerStore",
    "RecordedOutcome",
    "RulesDiff",
    "SchemaOutOfDate",
    "SmsQuestion",
    "Store",
    "Upgraded",
]
