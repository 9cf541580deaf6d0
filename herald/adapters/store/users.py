"""The users repository: preferences, contact details (and the provider refusals marked on them), the browser
inbox's read marks, Web Push subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from herald.adapters.store import schema
from herald.adapters.store.db import Database, contact_from, contact_query, preferences_from
from herald.domain.bounds import MAX_ERROR_CHARS, bound_text
from herald.models import Contact, Preferences, PushSubscription, utcnow
from herald.models.inbox import InboxReadState


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- preferences and contacts ----------------------------------------------------------------

    async def get_preferences(self, user_id: str) -> Preferences:
        """The user's preferences, or the empty default (every channel on) if none were saved."""
        return preferences_from(await self._get_document(schema.preferences, user_id))

    async def put_preferences(self, user_id: str, preferences: Preferences) -> None:
        await self._put_document(schema.preferences, user_id, preferences.model_dump(mode="json", exclude_none=True))

    async def update_preferences(
        self, user_id: str, change: Callable[[Preferences], Preferences]
    ) -> tuple[Preferences, Preferences]:
        """Apply `change` to the user's preferences in one transaction (the row locked on PostgreSQL, so a PUT
        at the same moment is not lost); (before, after). Nothing is written when `change` changes nothing."""
        table = schema.preferences

        def update(conn: sa.Connection) -> tuple[Preferences, Preferences]:
            query = sa.select(table.c.data).where(table.c.user_id == user_id).with_for_update()
            before = preferences_from(conn.scalar(query))
            after = change(before)
            if after != before:
                conn.execute(self._db.upsert_document(table, user_id, after.model_dump(mode="json", exclude_none=True)))
            return before, after

        return await self._db.write(update)

    async def get_contact(self, user_id: str) -> Contact | None:
        return contact_from(await self._db.read(lambda conn: conn.scalar(contact_query(user_id))))

    async def put_contact(self, user_id: str, contact: Contact) -> None:
        await self._put_document(schema.contacts, user_id, contact.model_dump(mode="json", exclude_none=True))

    async def reject_contact(self, user_id: str, field: str, reason: str) -> None:
        """Mark the phone (`phone_rejected`) or webhook (`webhook_disabled`) as refused by its provider."""
        if field not in ("phone_rejected", "webhook_disabled"):
            raise ValueError(f"cannot mark contact field {field!r}; use phone_rejected or webhook_disabled")
        t = schema.contacts
        reason = bound_text(reason, MAX_ERROR_CHARS) or ""
        # One UPDATE of the one key: two refusals at once (the phone and the webhook) both stay, where reading the
        # document and writing it back whole lost whichever wrote first. No contact saved: nothing to mark.
        data: Any
        if self._db.dialect == "postgresql":
            merged = sa.cast(t.c.data, postgresql.JSONB).op("||")(
                sa.func.jsonb_build_object(sa.cast(sa.literal(field), sa.Text), sa.cast(sa.literal(reason), sa.Text))
            )
            data = sa.cast(merged, sa.JSON)
        else:
            data = sa.func.json_set(t.c.data, f"$.{field}", reason)
        stmt = sa.update(t).where(t.c.user_id == user_id).values(data=data, updated_at=utcnow())
        await self._db.write(lambda conn: conn.execute(stmt))

    # --- the inbox's read marks ------------------------------------------------------------------

    async def get_inbox_state(self, user_id: str) -> InboxReadState:
        """The user's read marks; nothing read yet when none were saved."""
        data = await self._get_document(schema.inbox_state, user_id)
        return InboxReadState.model_validate(data) if data is not None else InboxReadState()

    async def put_inbox_state(self, user_id: str, state: InboxReadState) -> None:
        await self._put_document(schema.inbox_state, user_id, state.model_dump(mode="json"))

    # --- Web Push subscriptions ------------------------------------------------------------------

    async def add_push_subscription(self, user_id: str, subscription: PushSubscription) -> None:
        """Save a browser's subscription; the same endpoint saved again replaces the old keys and owner."""
        t = schema.push_subscriptions
        stmt = self._db.insert(t).values(
            endpoint=subscription.endpoint,
            user_id=user_id,
            subscription=subscription.model_dump(mode="json", exclude_none=True),
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.endpoint],
            set_={k: stmt.excluded[k] for k in ("user_id", "subscription", "created_at")},
        )
        await self._db.write(lambda conn: conn.execute(stmt))

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]:
        t = schema.push_subscriptions
        query = sa.select(t.c.subscription).where(t.c.user_id == user_id).order_by(t.c.created_at)
        rows = await self._db.read(lambda conn: conn.execute(query).scalars().all())
        return [PushSubscription.model_validate(row) for row in rows]

    async def remove_push_subscription(self, user_id: str, endpoint: str) -> bool:
        t = schema.push_subscriptions
        stmt = sa.delete(t).where(t.c.user_id == user_id, t.c.endpoint == endpoint)
        return bool(await self._db.write(lambda conn: conn.execute(stmt).rowcount))

    async def _get_document(self, table: sa.Table, user_id: str) -> Any:
        return await self._db.read(lambda conn: conn.scalar(sa.select(table.c.data).where(table.c.user_id == user_id)))

    async def _put_document(self, table: sa.Table, user_id: str, data: Any) -> None:
        stmt = self._db.upsert_document(table, user_id, data)
        await self._db.write(lambda conn: conn.execute(stmt))
