"""`GET /v1/ws`: a user's live connection. Frames go out as `{"type": "notification", ...}`; the client acks."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["push"])
