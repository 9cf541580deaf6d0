"""Push: Web Push subscriptions and the `/v1/ws` WebSocket with acks."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["push"])
