"""Callbacks from providers: Twilio's message status reports."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["providers"])
