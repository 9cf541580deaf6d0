"""The domain: pure decisions (routing, rules, dedup keys, retry, schedules, answer links) over herald.models.

Nothing here does I/O; everything here is tested without Temporal, a database or a network."""
