"""What the store keeps from providers is bounded first: a provider's text is never trusted to fit a column.

Pure (no database): the channels bound their results with the same function before the store sees them, so the
id in a workflow's receipt and the one in the delivery log are the same string.
"""

from __future__ import annotations

import hashlib

# Column widths (herald/adapters/store/schema.py) of what the store keeps from providers: longer values are cut and hashed.
MAX_PROVIDER_ID_CHARS = 256
MAX_ERROR_CHARS = 2000


def bound_text(value: str | None, limit: int) -> str | None:
    """`value` when it fits in `limit` characters; else a prefix and the SHA-256 of the whole value, within limit.

    Distinct long values stay distinct and the same value always bounds the same way, so a provider id cut
    here still matches the same id cut again later (a status callback looking its message up).
    """
    if value is None or len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    if limit <= len(digest) + 1:
        return digest[:limit]
    return f"{value[: limit - len(digest) - 1]}~{digest}"


# The other columns that hold a provider's words.
ERROR_TYPE_CHARS = 64
PROVIDER_STATUS_CHARS = 32
PROVIDER_ERROR_CODE_CHARS = 16
