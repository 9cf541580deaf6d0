"""Persistence: SQLite by default, PostgreSQL by URL, one code path; one repository per aggregate (sql.py)."""

from herald.adapters.store.answers import AnswerRepository, SmsQuestion
from herald.adapters.store.groups import GroupRepository
from herald.adapters.store.migrate import SchemaOutOfDate, Upgraded
from herald.adapters.store.notifications import NotificationRepository, RecordedOutcome
from herald.adapters.store.retention import PURGED_TABLES, RetentionRepository
from herald.adapters.store.rules import RuleRepository, RulesDiff
from herald.adapters.store.silences import SilenceRepository
from herald.adapters.store.sql import Store
from herald.adapters.store.subscriptions import SubscriptionRepository
from herald.adapters.store.throttle import ThrottleRepository
from herald.adapters.store.tokens import TokenRepository
from herald.adapters.store.users import UserRepository

__all__ = [
    "PURGED_TABLES",
    "AnswerRepository",
    "GroupRepository",
    "NotificationRepository",
    "RecordedOutcome",
    "RetentionRepository",
    "RuleRepository",
    "RulesDiff",
    "SchemaOutOfDate",
    "SilenceRepository",
    "SmsQuestion",
    "Store",
    "SubscriptionRepository",
    "ThrottleRepository",
    "TokenRepository",
    "Upgraded",
    "UserRepository",
]
