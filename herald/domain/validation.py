"""Turn pydantic validation errors into (field, message) pairs a person can act on. Used by API and CLI.

Input values are never echoed back: they may hold personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_LOCATION_PREFIXES = {"body", "path", "query", "header"}


@dataclass(frozen=True)
class FieldProblem:
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def _field(loc: Sequence[Any], request: bool) -> str | None:
    parts = list(loc)
    # Only a request's errors start with where the value was (`body`, `query`): a model's may name a field `body`.
    if request and parts and parts[0] in _LOCATION_PREFIXES:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or None


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "is invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error.get("type") == "missing":
        return "is required"
    if error.get("type") == "extra_forbidden":
        return "is not a known field"
    if error.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    return message


def describe(errors: Iterable[Mapping[str, Any]], *, request: bool = False) -> list[FieldProblem]:
    """`request=True` for FastAPI's RequestValidationError, whose locations start with `body`, `query`, ..."""
    # A JSON syntax error's location is a character offset, not a field: the whole body is at fault.
    return [
        FieldProblem(None if e.get("type") == "json_invalid" else _field(e.get("loc", ()), request), _message(e))
        for e in errors
    ]
