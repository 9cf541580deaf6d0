"""The notifications repository: what happened to each notification. Its dedup claim, the delivery log (every
attempt, and what providers reported about it later), the content it kept, its final outcome, the digest that
carried it, and the alerts it raised for operators."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import (
    Database,
    attempt_from,
    contact_from,
    contact_query,
    content_from,
    delivered_query,
)
from herald.domain.bounds import (
    ERROR_TYPE_CHARS,
    MAX_ERROR_CHARS,
    MAX_PROVIDER_ID_CHARS,
    PROVIDER_ERROR_CODE_CHARS,
    PROVIDER_STATUS_CHARS,
    bound_text,
)
from herald.models import (
    ChannelName,
    ChannelStatus,
    Contact,
    DeliveryAttempt,
    GroupRecord,
    NotificationOutcome,
    NotificationStatus,
    Priority,
    as_utc,
    utcnow,
)
from herald.models.inbox import NotificationContent


@dataclass(frozen=True)
class RecordedOutcome:
    """A notification's final outcome and when it was recorded: one row of the audit list."""

    outcome: NotificationOutcome
    completed_at: datetime
    # What it said, when its content was kept (from its first delivery attempt); None when no channel was tried.
    content: NotificationContent | None = None


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- dedup -----------------------------------------------------------------------------------

    async def claim_dedup_key(
        self, key: str, notification_id: str, window_seconds: float, now: float | None = None
    ) -> str:
        """Claim `key` for `notification_id` and return the key's owner.

        The first notification to claim a key owns it until the window ends; claiming again as the owner
        (an activity retry) returns the same owner, so a retried check never calls itself a duplicate.
        """
        now = time.time() if now is None else now
        t = schema.dedup_keys
        stmt = self._db.insert(t).values(key=key, notification_id=notification_id, expires_at=now + window_seconds)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.key],
            set_={"notification_id": stmt.excluded.notification_id, "expires_at": stmt.excluded.expires_at},
            where=t.c.expires_at <= now,
        )

        def claim(conn: sa.Connection) -> Any:
            conn.execute(stmt)
            return conn.scalar(sa.select(t.c.notification_id).where(t.c.key == key))

        owner = await self._db.write(claim)
        assert owner is not None  # the row was inserted or already there
        return str(owner)

    async def purge_dedup_keys(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        stmt = sa.delete(schema.dedup_keys).where(schema.dedup_keys.c.expires_at <= now)
        return await self._db.write(lambda conn: conn.execute(stmt).rowcount or 0)

    # --- delivery log ----------------------------------------------------------------------------

    async def record_attempt(self, attempt: DeliveryAttempt, content: NotificationContent | None = None) -> None:
        """Log the attempt; with `content`, keep what the notification said too (once: later attempts change nothing)."""
        row = attempt.model_dump(mode="python", exclude={"provider_status", "provider_error_code"})
        # What a provider said is bounded before it is stored: a receiver's 300-character message id must not fail
        # the write (and so the attempt) after the send succeeded.
        row["provider_message_id"] = bound_text(attempt.provider_message_id, MAX_PROVIDER_ID_CHARS)
        row["error"] = bound_text(attempt.error, MAX_ERROR_CHARS)
        row["error_type"] = bound_text(attempt.error_type, ERROR_TYPE_CHARS)
        row["started_at"], row["finished_at"] = as_utc(attempt.started_at), as_utc(attempt.finished_at)
        keep = self._keep_content(content) if content is not None else None

        def record(conn: sa.Connection) -> None:
            conn.execute(sa.insert(schema.delivery_log).values(**row))
            if keep is not None:
                conn.execute(keep)

        await self._db.write(record)

    async def keep_content(self, content: NotificationContent) -> None:
        """Keep what a notification said when no attempt will (it went to the digest); the first write wins."""
        stmt = self._keep_content(content)
        await self._db.write(lambda conn: conn.execute(stmt))

    def _keep_content(self, content: NotificationContent) -> Any:
        c = schema.notification_content
        values = content.model_dump(mode="python")
        values.update(priority=content.priority.value, created_at=as_utc(content.created_at), stored_at=utcnow())
        return self._db.insert(c).values(**values).on_conflict_do_nothing(index_elements=[c.c.notification_id])

    async def get_content(self, notification_id: str) -> NotificationContent | None:
        c = schema.notification_content
        query = sa.select(c).where(c.c.notification_id == notification_id)
        row = await self._db.read(lambda conn: conn.execute(query).mappings().first())
        return content_from(row) if row is not None else None

    async def find_delivered(self, idempotency_key: str) -> DeliveryAttempt | None:
        """The successful attempt for this (notification, channel), if one was logged: never send twice."""
        row = await self._db.read(lambda conn: conn.execute(delivered_query(idempotency_key)).mappings().first())
        return attempt_from(row) if row is not None else None

    async def delivery_context(
        self, idempotency_key: str, user_id: str
    ) -> tuple[DeliveryAttempt | None, Contact | None]:
        """What a delivery attempt reads before it sends, in one round trip: `find_delivered`, and the contact
        `UserRepository.get_contact` reads."""

        def read(conn: sa.Connection) -> tuple[Any, Any]:
            prior = conn.execute(delivered_query(idempotency_key)).mappings().first()
            return prior, conn.scalar(contact_query(user_id))

        prior, contact = await self._db.read(read)
        return (attempt_from(prior) if prior is not None else None), contact_from(contact)

    async def attempts(self, notification_id: str) -> list[DeliveryAttempt]:
        """Every attempt in order, with what the provider reported about it afterwards."""
        t, r = schema.delivery_log, schema.provider_receipts
        query = (
            sa.select(t, r.c.status.label("provider_status"), r.c.error_code.label("provider_error_code"))
            .select_from(t.outerjoin(r, t.c.provider_message_id == r.c.provider_message_id))
            .where(t.c.notification_id == notification_id)
            .order_by(t.c.id)
        )
        rows = await self._db.read(lambda conn: conn.execute(query).mappings().all())
        return [attempt_from(row) for row in rows]

    async def delivered_by_provider(self, channel: ChannelName, provider_message_id: str) -> str | None:
        """The notification a delivered message is (a chat message a button was clicked on), or None."""
        t = schema.delivery_log
        query = (
            sa.select(t.c.notification_id)
            .where(
                t.c.channel == channel.value,
                t.c.provider_message_id == provider_message_id,
                t.c.result == ChannelStatus.delivered.value,
            )
            .limit(1)
        )
        return await self._db.read(lambda conn: conn.scalar(query))

    async def record_provider_status(
        self, provider_message_id: str, status: str, error_code: str | None = None
    ) -> bool:
        """Record a provider's later report on a message; False when no attempt in the log sent that message."""
        t, r = schema.delivery_log, schema.provider_receipts
        # Bounded the way record_attempt bounds the id, so a long id still finds its attempt.
        provider_message_id = bound_text(provider_message_id, MAX_PROVIDER_ID_CHARS) or ""
        status = bound_text(status, PROVIDER_STATUS_CHARS) or ""
        error_code = bound_text(error_code, PROVIDER_ERROR_CODE_CHARS)
        stmt = self._db.insert(r).values(
            provider_message_id=provider_message_id, status=status, error_code=error_code, updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[r.c.provider_message_id],
            set_={k: stmt.excluded[k] for k in ("status", "error_code", "updated_at")},
        )

        def record(conn: sa.Connection) -> bool:
            known = conn.scalar(sa.select(t.c.id).where(t.c.provider_message_id == provider_message_id).limit(1))
            if known is None:
                return False
            conn.execute(stmt)
            return True

        return await self._db.write(record)

    # --- outcomes and ops alerts -----------------------------------------------------------------

    async def record_outcome(self, outcome: NotificationOutcome) -> None:
        """Write the final outcome; writing it again (an activity retry) replaces it."""
        t = schema.notifications
        values = {
            "notification_id": outcome.notification_id,
            "workflow_id": outcome.workflow_id,
            "agent_id": outcome.agent_id,
            "user_id": outcome.user_id,
            "priority": outcome.priority.value,
            "status": outcome.status.value,
            "outcome": outcome.model_dump(mode="json"),
            "completed_at": utcnow(),
        }
        stmt = self._db.insert(t).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.notification_id],
            set_={k: stmt.excluded[k] for k in ("status", "outcome", "completed_at")},
        )
        await self._db.write(lambda conn: conn.execute(stmt))

    async def get_outcome(self, notification_id: str) -> NotificationOutcome | None:
        t, d = schema.notifications, schema.digested
        query = (
            sa.select(t.c.outcome, d.c.digest_id)
            .select_from(t.outerjoin(d, t.c.notification_id == d.c.notification_id))
            .where(t.c.notification_id == notification_id)
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        outcome = NotificationOutcome.model_validate(row.outcome)
        return outcome.model_copy(update={"digest_id": row.digest_id}) if row.digest_id else outcome

    async def list_outcomes(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        status: NotificationStatus | None = None,
        priority: Priority | None = None,
        since: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[RecordedOutcome]:
        """Recorded outcomes, newest first, matching every filter given; `since` bounds when they were recorded.

        Keyset paging: `after` is the (completed_at, notification_id) of the last row already seen, and the
        page holds the rows strictly after it in this order, so a page never shifts when new rows arrive.
        """
        t, d, c = schema.notifications, schema.digested, schema.notification_content
        query = sa.select(
            t.c.outcome,
            t.c.completed_at,
            d.c.digest_id,
            c.c.title.label("content_title"),
            c.c.body.label("content_body"),
            c.c.created_at.label("content_created_at"),
        ).select_from(
            t.outerjoin(d, t.c.notification_id == d.c.notification_id).outerjoin(
                c, t.c.notification_id == c.c.notification_id
            )
        )
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if agent_id is not None:
            query = query.where(t.c.agent_id == agent_id)
        if status is not None:
            query = query.where(t.c.status == status.value)
        if priority is not None:
            query = query.where(t.c.priority == priority.value)
        if since is not None:
            query = query.where(t.c.completed_at >= as_utc(since))
        if after is not None:
            at, notification_id = as_utc(after[0]), after[1]
            query = query.where(
                sa.or_(t.c.completed_at < at, sa.and_(t.c.completed_at == at, t.c.notification_id < notification_id))
            )
        query = query.order_by(t.c.completed_at.desc(), t.c.notification_id.desc()).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        recorded = []
        for row in rows:
            outcome = NotificationOutcome.model_validate(row.outcome)
            if row.digest_id:
                outcome = outcome.model_copy(update={"digest_id": row.digest_id})
            content = None
            if row.content_title is not None:
                content = NotificationContent(
                    notification_id=outcome.notification_id,
                    agent_id=outcome.agent_id,
                    user_id=outcome.user_id,
                    priority=outcome.priority,
                    title=row.content_title,
                    body=row.content_body,
                    created_at=as_utc(row.content_created_at),
                )
            recorded.append(RecordedOutcome(outcome, as_utc(row.completed_at), content))
        return recorded

    async def mark_digested(self, notification_ids: list[str], digest_id: str) -> None:
        """Note which digest notification carried these notifications (a retry changes nothing)."""
        if not notification_ids:
            return
        t = schema.digested
        rows = [{"notification_id": n, "digest_id": digest_id, "created_at": utcnow()} for n in notification_ids]
        stmt = self._db.insert(t).values(rows).on_conflict_do_nothing(index_elements=[t.c.notification_id])
        await self._db.write(lambda conn: conn.execute(stmt))

    async def record_grouped(self, record: GroupRecord) -> list[str]:
        """Give each grouped member's recorded outcome its group's message (`group_delivery`) and that message's
        channels, in one unit of work; a retry writes the same again. Returns the members whose outcome is not
        recorded yet (the caller retries for them)."""
        t = schema.notifications
        ids = list(dict.fromkeys(record.notification_ids))
        delivery = record.delivery.model_dump(mode="json")
        channels = {c.value: r.model_dump(mode="json") for c, r in record.channels.items()}

        def work(conn: sa.Connection) -> list[str]:
            rows = conn.execute(sa.select(t.c.notification_id, t.c.outcome).where(t.c.notification_id.in_(ids))).all()
            found = {row.notification_id: row.outcome for row in rows}
            for notification_id, outcome in found.items():
                updated = dict(outcome)
                if updated.get("group_id") != record.group_id:
                    continue  # not this group's member (a foreign id): left alone
                updated.update(group_delivery=delivery, channels=channels)
                conn.execute(sa.update(t).where(t.c.notification_id == notification_id).values(outcome=updated))
            return [n for n in ids if n not in found]

        return await self._db.write(work)

    async def record_ops_alert(self, notification_id: str, kind: str, message: str) -> None:
        """Record an alert for operators, once per (notification, kind) even if the activity is retried."""
        t = schema.ops_alerts
        stmt = self._db.insert(t).values(
            notification_id=notification_id, kind=kind, message=message, created_at=utcnow()
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.notification_id, t.c.kind])
        await self._db.write(lambda conn: conn.execute(stmt))

    async def ops_alerts(self, notification_id: str) -> list[dict[str, Any]]:
        t = schema.ops_alerts
        query = sa.select(t.c.kind, t.c.message, t.c.created_at).where(t.c.notification_id == notification_id)
        return await self._db.read(lambda conn: [dict(row) for row in conn.execute(query).mappings().all()])
