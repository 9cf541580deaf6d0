"""The content key: a burst of the same notification reaches a person once, and nobody else is silenced."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain.dedup import content_key, question_key
from herald.models import Action, AgentNotification


def make(agent_id: str = "batch-agent", title: str = "Job finished", user_id: str = "alice", **kw: object) -> str:
    return content_key(
        AgentNotification.model_validate({"agent_id": agent_id, "title": title, "user_id": user_id, **kw})
    )


def test_key_is_sha256_hex() -> None:
    key = make()
    assert re.fullmatch(r"[0-9a-f]{64}", key)


def test_key_is_sha256_of_agent_title_user() -> None:
    """docs/design.md: sha256 of `agent_id:title:user_id`."""
    assert make("batch-agent", "Job finished", "alice") == hashlib.sha256(b"batch-agent:Job finished:alice").hexdigest()


def test_same_agent_title_user_give_the_same_key() -> None:
    assert make() == make()


def test_key_ignores_everything_but_agent_title_and_user() -> None:
    assert make() == make(
        body="different body",
        priority="critical",
        channels=["sms"],
        metadata={"run": 7},
        notification_id="other-id",
        created_at="2020-01-01T00:00:00Z",
    )


def test_title_is_compared_after_stripping() -> None:
    assert make(title="  Job finished  ") == make(title="Job finished")


@pytest.mark.parametrize(
    "other",
    [
        {"agent_id": "other-agent"},
        {"title": "Job failed"},
        {"title": "job finished"},
        {"user_id": "bob"},
    ],
)
def test_any_differing_field_gives_a_different_key(other: dict[str, str]) -> None:
    assert make(**other) != make()


def test_explicit_dedup_key_overrides_the_title() -> None:
    assert make(title="Disk 91% full", dedup_key="disk") == make(title="Disk 97% full", dedup_key="disk")
    assert make(title="Disk 91% full", dedup_key="disk") != make(title="Disk 91% full", dedup_key="cpu")


def test_explicit_dedup_key_stays_scoped_per_user() -> None:
    assert make(user_id="alice", dedup_key="disk") != make(user_id="bob", dedup_key="disk")


def test_explicit_dedup_key_stays_scoped_per_agent() -> None:
    assert make(agent_id="agent-a", dedup_key="disk") != make(agent_id="agent-b", dedup_key="disk")


def test_explicit_dedup_key_differs_from_the_title_key() -> None:
    assert make(title="disk", dedup_key="disk") != make(title="disk")


def test_explicit_key_is_sha256_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", make(dedup_key="k" * 200))


# --- properties ----------------------------------------------------------------------------------

# Identifiers as the model allows them: letters, digits and . _ : @ -, starting with a letter or digit.
ident_st = st.from_regex(r"\A[a-z0-9][a-z0-9.:@-]{0,8}\Z")
title_st = st.text(alphabet="ab: %", min_size=1, max_size=10).filter(lambda s: s.strip() == s and s)
dedup_key_st = st.one_of(st.none(), st.text(alphabet="ab:", min_size=1, max_size=8))
fields_st = st.tuples(ident_st, title_st, ident_st, dedup_key_st)


@given(a=fields_st, b=fields_st)
def test_keys_are_equal_exactly_when_the_deduplicated_fields_are(
    a: tuple[str, str, str, str | None], b: tuple[str, str, str, str | None]
) -> None:
    def key(f: tuple[str, str, str, str | None]) -> str:
        return make(agent_id=f[0], title=f[1], user_id=f[2], dedup_key=f[3])

    def identity(f: tuple[str, str, str, str | None]) -> tuple[str, str, str | None, str | None]:
        # with an explicit key the title no longer matters
        return (f[0], f[2], f[3], f[1] if f[3] is None else None)

    assert (key(a) == key(b)) == (identity(a) == identity(b))


# Identifiers may contain ':', the separator of the raw key, so the fields must not run into each other.


def test_colon_in_agent_id_does_not_collide_with_colon_in_title() -> None:
    assert make(agent_id="a:b", title="c", user_id="u") != make(agent_id="a", title="b:c", user_id="u")


def test_explicit_key_of_one_agent_never_silences_another_agent_or_person() -> None:
    assert make(agent_id="a:b", user_id="c", dedup_key="d") != make(agent_id="a", user_id="b:c", dedup_key="d")


def test_title_key_never_collides_with_an_explicit_key() -> None:
    assert make(agent_id="key", title="a", user_id="b:c") != make(agent_id="a", user_id="b", dedup_key="c")


def test_a_question_has_a_key_of_its_own_that_its_action_ids_decide() -> None:
    def ask(*ids: str, **kw: object) -> AgentNotification:
        actions = [Action(id=i, label=i.title()) for i in ids]
        return AgentNotification.model_validate(
            {"agent_id": "a", "user_id": "u", "title": "Ship?", "actions": actions, **kw}
        )

    assert question_key(ask("yes", "no")) == question_key(ask("yes", "no", body="other text"))
    assert question_key(ask("yes", "no")) != question_key(ask("yes"))  # other choices: another question
    assert question_key(ask("yes", "no")) != content_key(ask("yes", "no"))  # never a plain notification's key
    assert question_key(ask("yes", "no")) != question_key(ask("yes", "no", user_id="v"))
