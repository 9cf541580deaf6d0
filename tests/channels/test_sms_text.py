"""SMS segment arithmetic and fitting, tested directly: GSM-7 vs UCS-2, one or two segments, the link kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.adapters.channels.base import OutboundMessage
from herald.adapters.channels.render import sms_payload
from herald.adapters.channels.sms_text import GSM_BASIC, GSM_EXTENSION, encoding, fit_sms, is_gsm, segments
from herald.domain.errors import ContactMissing
from herald.models import AgentNotification, ChannelName, Contact

LINK = "https://herald.example.com/v1/notifications/01JABCDEFGHJKMNPQRSTVWXYZ0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€", 1),  # 154 septets still fit one segment
        ("a" * 152 + "€" + "a" * 7, 2),  # 161 septets: the escape pair moves whole into segment two
        ("é" * 70, 1),  # é is in the GSM basic set
        ("✓" * 70, 1),
        ("✓" * 71, 2),
        ("✓" * 134, 2),
        ("✓" * 135, 3),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 67, 3),  # 135 units would be 3 anyway
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, but the pair can't straddle segments
    ],
)
def test_segments(text: str, expected: int) -> None:
    assert segments(text) == expected


def test_encoding() -> None:
    assert encoding("Hello @ £5 [ok] {x} ~ ^ | \\ €") == "GSM-7"
    assert encoding("Hello ✓") == "UCS-2"
    assert encoding("naïve") == "UCS-2"  # ï is not in GSM 03.38
    assert encoding("`") == "UCS-2"  # nor is the backtick
    assert not is_gsm("…")
    assert "\x1b" not in GSM_BASIC


def test_short_text_is_unchanged() -> None:
    assert fit_sms("[HIGH] Disk full: 98% on db-1", None) == "[HIGH] Disk full: 98% on db-1"
    assert fit_sms("[HIGH] Disk full", LINK) == f"[HIGH] Disk full\n{LINK}"


def test_long_gsm_text_uses_three_dots_and_keeps_the_link() -> None:
    text = "[CRITICAL] Database down: " + "the primary stopped answering and replicas lag behind " * 10
    result = fit_sms(text, LINK)
    assert result.endswith("...\n" + LINK)
    assert encoding(result) == "GSM-7"
    assert segments(result) == 2
    kept = result.removesuffix("...\n" + LINK)
    assert text.startswith(kept)
    assert text[len(kept)] == " "  # cut at a word boundary
    # As much as fits: one more word would not.
    next_word = text[len(kept) :].split()[0]
    assert segments(f"{kept} {next_word}...\n{LINK}") > 2


def test_long_unicode_text_uses_the_ellipsis_character() -> None:
    text = "[HIGH] Диск заполнен: " + "сервер базы данных не отвечает " * 10
    result = fit_sms(text, LINK)
    assert result.endswith("…\n" + LINK)
    assert encoding(result) == "UCS-2"
    assert segments(result) == 2


def test_one_segment_budget() -> None:
    text = "[HIGH] Deploy finished: " + "all services green " * 20
    result = fit_sms(text, None, max_segments=1)
    assert segments(result) == 1
    assert len(result) <= 160
    assert result.endswith("...")


def test_a_word_longer_than_the_room_is_cut_mid_word() -> None:
    result = fit_sms("x" * 1000, LINK)
    assert result == "x" * (306 - len(LINK) - 1 - 3) + "...\n" + LINK


def test_a_link_too_long_to_fit_is_dropped() -> None:
    result = fit_sms("[HIGH] Title: body", "https://example.com/" + "a" * 400)
    assert result == "[HIGH] Title: body"


def test_max_segments_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_segments"):
        fit_sms("x", None, max_segments=0)


gsm_chars = st.sampled_from(sorted(GSM_BASIC | GSM_EXTENSION))
any_text = st.one_of(
    st.text(gsm_chars, max_size=800),
    st.text(max_size=800),
    st.text(st.sampled_from(["a", " ", "€", "✓", "😀", "é", "\n"]), max_size=800),
)
links = st.one_of(
    st.none(),
    st.builds(lambda tail: f"https://h.example/v1/notifications/{tail}", st.text("abcXYZ019-_~", max_size=60)),
)


@settings(max_examples=300, deadline=None)
@given(text=any_text, link=links, max_segments=st.integers(min_value=1, max_value=3))
def test_fit_sms_properties(text: str, link: str | None, max_segments: int) -> None:
    result = fit_sms(text, link, max_segments)
    assert segments(result) <= max_segments
    if link is not None and segments(link) > max_segments:
        link = None  # too long to send at all: dropped (tested above)
    if link is not None:
        assert result.endswith(link)
    whole = text if link is None else f"{text}\n{link}"
    if segments(whole) <= max_segments:
        assert result == whole
        return
    if result == link:
        return  # not even one character of text fitted beside the link
    body = result if link is None else result.removesuffix("\n" + link)
    assert body.endswith(("...", "…"))
    kept = body.removesuffix("...") if body.endswith("...") else body.removesuffix("…")
    assert text.startswith(kept)
    # Three dots, not "…", unless the kept text (or the link) needs UCS-2 anyway.
    if is_gsm(kept + (link or "")):
        assert encoding(result) == "GSM-7"


@settings(max_examples=200, deadline=None)
@given(text=any_text)
def test_segments_never_shrink_as_text_grows(text: str) -> None:
    assert segments(text) <= segments(text + "a") <= segments(text + "a✓")


def test_sms_payload_fits_the_body_and_keeps_the_link() -> None:
    n = AgentNotification(agent_id="monitor", user_id="ada", title="Disk full", body="98% " * 200, priority="critical")
    message = OutboundMessage(n, ChannelName.sms, "k", Contact(phone="+14155550100"))
    payload = sms_payload(message, "+14155550199", link=LINK)
    assert payload["To"] == "+14155550100" and payload["From"] == "+14155550199"
    assert payload["Body"].startswith("[CRITICAL] Disk full: 98% 98%")
    assert payload["Body"].endswith("...\n" + LINK)
    assert segments(payload["Body"]) == 2
    # The outbox calls it without a link.
    assert sms_payload(message, None)["Body"].endswith("...")
    with pytest.raises(ContactMissing):
        sms_payload(OutboundMessage(n, ChannelName.sms, "k", Contact()), None)
