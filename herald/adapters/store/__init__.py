"""Persistence: SQLite by default, PostgreSQL by URL, one code path."""

# answers' tables join the one metadata on import, so Store.open creates them too.
from herald.adapters.store.answers import AnswerStore, SmsQuestion
from herald.adapters.store.sql import PURGED_TABLES, RecordedOutcome, RulesDiff, Store

__all__ = ["PURGED_TABLES", "AnswerStore", "RecordedOutcome", "RulesDiff", "SmsQuestion", "Store"]
