"""SMS length arithmetic: what fits in one or two segments, so a long notification isn't billed as five texts.

A message is GSM-7 when every character is in the GSM 03.38 basic set or its extension table (extension
characters take two septets); any other character turns the whole message into UCS-2 (UTF-16 code units,
so an emoji takes two). One segment holds 160 septets or 70 units; a multipart message spends part of each
segment on its header and holds 153 septets or 67 units per segment, and carriers never split an escape
sequence or a surrogate pair across segments.
"""

from __future__ import annotations

from typing import Literal

GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

LINK_SEPARATOR = "\n"
_TRAILING_JUNK = " \t\r\n,;:-–—"

Encoding = Literal["GSM-7", "UCS-2"]


def is_gsm(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def encoding(text: str) -> Encoding:
    return "GSM-7" if is_gsm(text) else "UCS-2"


def _costs(text: str, gsm: bool) -> list[int]:
    """What each character takes: septets under GSM-7, UTF-16 code units under UCS-2."""
    if gsm:
        return [2 if ch in GSM_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def segments(text: str) -> int:
    """How many SMS segments `text` is sent as; an empty message still takes one."""
    gsm = is_gsm(text)
    costs = _costs(text, gsm)
    single, per_part = (GSM_SINGLE, GSM_MULTI) if gsm else (UCS2_SINGLE, UCS2_MULTI)
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            count, used = count + 1, cost
        else:
            used += cost
    return count


def fit_sms(text: str, link: str | None, max_segments: int = 2) -> str:
    """`text` (then the link on its own line) in at most `max_segments` segments.

    Text that fits is returned unchanged. Otherwise the text is cut at a word boundary (mid-word only when
    one word is longer than the room) and ends in an ellipsis; the link always stays whole at the end. The
    ellipsis is "..." when the rest is GSM-7, because "…" alone would switch the SMS to UCS-2 and halve it.
    A link too long to fit even alone is dropped: a cut link is worse than none.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if link is not None and segments(link) > max_segments:
        link = None
    tail = "" if link is None else LINK_SEPARATOR + link
    if segments(text + tail) <= max_segments:
        return text + tail

    def fits(prefix: str) -> str | None:
        ellipsis = "..." if is_gsm(prefix + tail) else "…"
        candidate = prefix + ellipsis + tail
        return candidate if segments(candidate) <= max_segments else None

    # No segment holds more than 160 characters, so a longer prefix can never fit.
    room = min(len(text), GSM_SINGLE * max_segments)
    head = text[:room]
    word_ends = [i for i in range(room, 0, -1) if i == len(text) or text[i].isspace()]
    for end in word_ends:
        prefix = head[:end].rstrip(_TRAILING_JUNK)
        if prefix and (found := fits(prefix)) is not None:
            return found
    for end in range(room, 0, -1):
        prefix = head[:end].rstrip(_TRAILING_JUNK)
        if prefix and (found := fits(prefix)) is not None:
            return found
    return link if link is not None else fits("") or ""
