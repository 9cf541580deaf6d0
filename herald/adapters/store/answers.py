"""What answering needs to remember outside Temporal: used answer links, SMS questions by phone, snoozes.

The tables live on the store's one metadata (the migrations create them); `AnswerRepository` is an open Store's
`answers`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from herald.adapters.store import schema
from herald.adapters.store.db import Database, contact_from, contact_query, preferences_from
from herald.domain.answers import bounded_reason
from herald.models import (
    REFUSED_ANSWERS_MAX,
    AnswerChannel,
    Contact,
    Preferences,
    RefusedAnswer,
    Snooze,
    as_utc,
    utcnow,
)

Timestamp = sa.DateTime(timezone=True)

# Each answer link is single-use: its nonce is recorded when it is used (kept until the link expires).
used_answer_links = sa.Table(
    "used_answer_links",
    schema.metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("notification_id", sa.String(128), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),  # epoch seconds
)

# Questions sent by SMS, found by a hash of the phone number (never the number itself) when a reply comes in.
sms_questions = sa.Table(
    "sms_questions",
    schema.metadata,
    sa.Column("notification_id", sa.String(128), primary_key=True),
    sa.Column("phone_key", sa.String(64), nullable=False, index=True),
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("action_ids", sa.JSON, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

# A user's mute of one rule or agent: scope `rule:<name>` or `agent:<id>`.
snoozes = sa.Table(
    "snoozes",
    schema.metadata,
    sa.Column("user_id", sa.String(128), primary_key=True),
    sa.Column("scope", sa.String(160), primary_key=True),
    sa.Column("until", Timestamp, nullable=False),
)

# purge_expired's scans (migration 0002).
sa.Index("ix_used_answer_links_expires", used_answer_links.c.expires_at)
sa.Index("ix_sms_questions_expires", sms_questions.c.expires_at)
sa.Index("ix_snoozes_until", snoozes.c.until)


_ACTION_ID_CHARS = 32  # action ids are 1-32 characters (ACTION_ID_REGEX)

# Answers the workflow refused without recording them (its validator's refusals, and any once it had finished; a
# running workflow keeps the rest in its outcome): at most REFUSED_ANSWERS_MAX per notification, reasons bounded.
refused_answers = sa.Table(
    "refused_answers",
    schema.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.String(128), nullable=False, index=True),
    sa.Column("action_id", sa.String(_ACTION_ID_CHARS), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
)


def _snooze_end(user_id: str, scopes: list[str], now: datetime) -> sa.Select[Any]:
    t = snoozes
    return sa.select(sa.func.max(t.c.until)).where(
        t.c.user_id == user_id, t.c.scope.in_(scopes), t.c.until > as_utc(now)
    )


@dataclass(frozen=True)
class SmsQuestion:
    """The newest open question texted to a phone: what a numbered reply answers."""

    notification_id: str
    user_id: str
    action_ids: list[str]


class AnswerRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def link_used(self, nonce: str) -> bool:
        """Whether an answer link was used already (its answer taken)."""
        t = used_answer_links
        query = sa.select(t.c.nonce).where(t.c.nonce == nonce)
        return await self._db.read(lambda conn: conn.execute(query).first() is not None)

    async def use_link(self, nonce: str, notification_id: str, expires_at: float) -> bool:
        """Record an answer link as used, once its answer was taken; False when it was used before (links are
        single-use)."""
        t = used_answer_links
        stmt = self._db.insert(t).values(nonce=nonce, notification_id=notification_id, expires_at=expires_at)
        stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.nonce])
        return bool(await self._db.write(lambda conn: conn.execute(stmt).rowcount))

    # --- Telegram link codes (`herald telegram link`): single-use, expiring, kept as their hash -----------------
    # They share used_answer_links (a single-use key, who it is for, when it ends, purged with the links) under
    # a prefix no answer link's nonce has: a code is what a link is, a one-time way in.

    async def add_telegram_link(self, code_key: str, user_id: str, expires_at: float) -> None:
        """A code that binds the chat it is sent from to `user_id` until `expires_at` (epoch seconds)."""
        t = used_answer_links
        stmt = self._db.insert(t).values(nonce=code_key, notification_id=user_id, expires_at=expires_at)
        await self._db.write(lambda conn: conn.execute(stmt))

    async def use_telegram_link(self, code_key: str, now: float | None = None) -> str | None:
        """The user a live code names, spending it (one DELETE: two chats sending it at once bind one); None when
        it is unknown, used or expired."""
        t = used_answer_links
        stmt = (
            sa.delete(t)
            .where(t.c.nonce == code_key, t.c.expires_at > (now if now is not None else time.time()))
            .returning(t.c.notification_id)
        )
        return await self._db.write(lambda conn: conn.execute(stmt).scalar())

    async def record_sms_question(
        self, phone_key: str, notification_id: str, user_id: str, action_ids: list[str], expires_at: datetime
    ) -> None:
        """Remember a question texted to a phone (a retried send changes nothing)."""
        t = sms_questions
        stmt = self._db.insert(t).values(
            notification_id=notification_id,
            phone_key=phone_key,
            user_id=user_id,
            action_ids=action_ids,
            sent_at=utcnow(),
            expires_at=as_utc(expires_at),
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.notification_id])
        await self._db.write(lambda conn: conn.execute(stmt))

    async def open_sms_question(self, phone_key: str, now: datetime | None = None) -> SmsQuestion | None:
        """The newest question texted to this phone that still takes answers: not expired, and its
        notification not finished (a finished one has its outcome recorded in `notifications`)."""
        t, done = sms_questions, schema.notifications
        query = (
            sa.select(t.c.notification_id, t.c.user_id, t.c.action_ids)
            .select_from(t.outerjoin(done, done.c.notification_id == t.c.notification_id))
            .where(
                t.c.phone_key == phone_key, t.c.expires_at > as_utc(now or utcnow()), done.c.notification_id.is_(None)
            )
            .order_by(t.c.sent_at.desc())
            .limit(1)
        )
        row = await self._db.read(lambda conn: conn.execute(query).first())
        if row is None:
            return None
        return SmsQuestion(str(row.notification_id), str(row.user_id), [str(a) for a in row.action_ids])

    async def record_refusal(self, notification_id: str, refused: RefusedAnswer) -> bool:
        """Keep a refused answer for the record (the reason names no person: ids, channels and times only): the
        first REFUSED_ANSWERS_MAX of a notification, each reason cut to `bounded_reason`, so a flood of bad answers
        can't grow the store. False when the notification's record was full and nothing was kept."""
        t = refused_answers
        values = refused.model_dump(mode="python")
        values.update(
            notification_id=notification_id,
            action_id=refused.action_id[:_ACTION_ID_CHARS],
            channel=refused.channel.value,
            reason=bounded_reason(refused.reason),
            at=as_utc(refused.at),
        )
        kept = sa.select(sa.func.count()).select_from(t).where(t.c.notification_id == notification_id)
        row = sa.select(*(sa.literal(value, type_=t.c[name].type) for name, value in values.items()))
        # One statement: SQLite takes its write lock before it counts, so two refusals can't pass the cap together.
        stmt = sa.insert(t).from_select(list(values), row.where(kept.scalar_subquery() < REFUSED_ANSWERS_MAX))
        postgres = self._db.dialect == "postgresql"

        def work(conn: sa.Connection) -> bool:
            if postgres:  # PostgreSQL counts before it writes: one refusal per notification at a time
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"refused:{notification_id}"))))
            return bool(conn.execute(stmt).rowcount)

        return await self._db.write(work)

    async def refusals(self, notification_id: str) -> list[RefusedAnswer]:
        t = refused_answers
        query = sa.select(t.c.action_id, t.c.channel, t.c.reason, t.c.at).where(t.c.notification_id == notification_id)
        rows = await self._db.read(lambda conn: conn.execute(query.order_by(t.c.id)).all())
        return [
            RefusedAnswer(action_id=r.action_id, channel=AnswerChannel(r.channel), reason=r.reason, at=as_utc(r.at))
            for r in rows
        ]

    async def put_snooze(self, snooze: Snooze) -> None:
        """Mute a scope for a user until `snooze.until`; snoozing again moves the end."""
        t = snoozes
        stmt = self._db.insert(t).values(user_id=snooze.user_id, scope=snooze.scope, until=as_utc(snooze.until))
        stmt = stmt.on_conflict_do_update(index_elements=[t.c.user_id, t.c.scope], set_={"until": stmt.excluded.until})
        await self._db.write(lambda conn: conn.execute(stmt))

    async def snoozed_until(self, user_id: str, scopes: list[str], now: datetime | None = None) -> datetime | None:
        """The latest end of a live snooze of any of `scopes` for this user, or None."""
        until = await self._db.read(lambda conn: conn.scalar(_snooze_end(user_id, scopes, now or utcnow())))
        return as_utc(until) if until is not None else None

    async def preferences_and_snooze(
        self, user_id: str, scopes: list[str] | None, now: datetime
    ) -> tuple[Preferences, datetime | None]:
        """The user's preferences and, for `scopes`, `snoozed_until`: one round trip, as every notification
        reads both (no scopes, as for critical, which gets through a snooze: preferences alone)."""
        preferences, until, _contact = await self.routing_inputs(user_id, scopes, now)
        return preferences, until

    async def routing_inputs(
        self, user_id: str, scopes: list[str] | None, now: datetime
    ) -> tuple[Preferences, datetime | None, Contact | None]:
        """`preferences_and_snooze` and the user's contact (which chat channels can reach them), in one round trip."""
        t = schema.preferences

        def read(conn: sa.Connection) -> tuple[Any, Any, Any]:
            data = conn.scalar(sa.select(t.c.data).where(t.c.user_id == user_id))
            until = conn.scalar(_snooze_end(user_id, scopes, now)) if scopes else None
            return data, until, conn.scalar(contact_query(user_id))

        data, until, contact = await self._db.read(read)
        return preferences_from(data), as_utc(until) if until is not None else None, contact_from(contact)

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Drop used links, SMS questions and snoozes that can no longer matter."""
        now = now or utcnow()
        stmts = [
            sa.delete(used_answer_links).where(used_answer_links.c.expires_at <= now.timestamp()),
            sa.delete(sms_questions).where(sms_questions.c.expires_at <= as_utc(now)),
            sa.delete(snoozes).where(snoozes.c.until <= as_utc(now)),
        ]
        return await self._db.write(lambda conn: sum(conn.execute(stmt).rowcount or 0 for stmt in stmts))
