"""Text the API refuses before any route sees it: bodies that are not UTF-8, and JSON strings holding lone
UTF-16 surrogates (`"\\ud800"`). Python's json reads both without complaint, and the surrogate then breaks
whatever encodes it later (the store, Temporal's payloads, a provider) with a 500 or a stuck workflow.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# A `\uD800`-`\uDFFF` escape: only then can a parsed string hold a surrogate (raw surrogate bytes fail UTF-8).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
NOT_UTF8 = "the request body is not UTF-8 text"
SURROGATE = "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"


@dataclass(frozen=True)
class BodyProblem:
    status: int
    message: str
    field: str | None = None


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def body_problem(body: bytes, content_type: str | None) -> BodyProblem | None:
    """Why a JSON body must be refused as text, or None. Anything else about it is the route's to judge."""
    if not body or not is_json(content_type):
        return None
    try:
        body.decode("utf-8")  # strict: encoded surrogates (ED A0 80) fail here too
    except UnicodeDecodeError:
        return BodyProblem(400, NOT_UTF8)
    if not _SURROGATE_ESCAPE.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON at all: the route says so
    path = surrogate_path(document)
    if path is None:
        return None
    field = ".".join(path) or None
    return BodyProblem(422, f"{field}: {SURROGATE}" if field else SURROGATE, field)


def surrogate_path(document: object) -> list[str] | None:
    """The path (keys and indexes) to the first string or key holding a lone surrogate, or None; no recursion."""
    stack: list[tuple[object, list[str]]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _encodable(key):
                    return [*path, key.encode("utf-8", "replace").decode()]
                stack.append((item, [*path, key]))
        elif isinstance(value, list):
            stack.extend((item, [*path, str(index)]) for index, item in enumerate(value))
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
