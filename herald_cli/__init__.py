"""The `herald` command line: run the stack, send notifications and events, read outcomes, manage preferences and rules.

One module per group of commands; importing them registers their commands on `app`.
"""

from herald_cli import (
    db,
    groups,
    heartbeats,
    keys,
    mcp,
    notifications,
    oncall,
    rules,
    silences,
    stack,
    subscriptions,
    users,
)
from herald_cli.common import app
from herald_cli.rules import check_rules, diff_lines, event_fields, parse_metric, rule_entries, rules_diff, rules_table

__all__ = [
    "app",
    "check_rules",
    "db",
    "diff_lines",
    "event_fields",
    "groups",
    "heartbeats",
    "keys",
    "mcp",
    "notifications",
    "oncall",
    "parse_metric",
    "rule_entries",
    "rules",
    "rules_diff",
    "rules_table",
    "silences",
    "stack",
    "subscriptions",
    "users",
]
