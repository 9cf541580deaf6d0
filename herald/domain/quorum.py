"""When a question to a group is decided: the answers so far and its quorum -> undecided (None) or decided (the
action, and who chose it). And the words every member's message is updated with ("Approved by ada and grace").

A person counts once (their first answer). `"first"`: the first answer decides. `{"action": A, "count": N}`: decided
`A` once N distinct people chose it; any other action, by anyone, decides that action at once (a deny vetoes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from herald.models import Action, Answer
from herald.models.groups import Quorum


@dataclass(frozen=True)
class Decided:
    action_id: str
    by: list[str]  # who chose it, in the order they answered
    deciding: Answer  # the answer that decided it


def first_answers(answers: Sequence[Answer]) -> list[Answer]:
    """Each person's first answer, in the order they came."""
    seen: set[str] = set()
    firsts = []
    for answer in answers:
        if answer.user_id not in seen:
            seen.add(answer.user_id)
            firsts.append(answer)
    return firsts


def decide(answers: Sequence[Answer], quorum: Quorum) -> Decided | None:
    """The decision the answers so far make under `quorum`, or None while it is undecided."""
    approvers: list[str] = []
    for answer in first_answers(answers):
        if quorum == "first" or isinstance(quorum, str) or answer.action_id != quorum.action:
            return Decided(answer.action_id, [answer.user_id], answer)
        approvers.append(answer.user_id)
        if len(approvers) >= quorum.count:
            return Decided(quorum.action, approvers, answer)
    return None


NOT_VERBS = frozenset({"yes", "no", "ok", "okay", "sure", "later", "never", "maybe"})


def past_tense(label: str) -> str:
    """ "Approve" -> "Approved", "Deny" -> "Denied", "Stop" -> "Stopped", "Restart" -> "Restarted"; a label that is
    no single verb ("Yes", "Roll back") is quoted: "“Yes” chosen"."""
    word = label.strip()
    lower = word.lower()
    if not word or not word.isalpha() or lower in NOT_VERBS:
        return f"“{word}” chosen"
    if lower.endswith("ed"):
        return word
    if lower.endswith("e"):
        return word + "d"
    if lower.endswith("y") and len(word) > 1 and lower[-2] not in "aeiou":
        return word[:-1] + "ied"
    vowels = "aeiou"
    one_syllable = len(word) in (3, 4) and lower[0] not in vowels
    if one_syllable and lower[-1] not in vowels + "wxy" and lower[-2] in vowels and lower[-3] not in vowels:
        return word + word[-1] + "ed"
    return word + "ed"


def people(names: Sequence[str]) -> str:
    """ "ada", "ada and grace", "ada, grace and linus"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def decision_text(decided: Decided, actions: Sequence[Action]) -> str:
    """What every member's message says once decided: "Approved by ada and grace", "Denied by ada"."""
    label = next((a.label for a in actions if a.id == decided.action_id), decided.action_id)
    return f"{past_tense(label)} by {people(decided.by)}"


def quorum_problem(quorum: Quorum, members: int) -> str | None:
    """Why a quorum can never be met by a group of `members`, or None."""
    if isinstance(quorum, str) or quorum.count <= members:
        return None
    return f"count is {quorum.count}, but the group has {members} member{'s' if members != 1 else ''}"
