"""Rule conditions: CEL over an agent's metrics, compiled once with errors that point into the source.

Each metric is a CEL variable (`error_rate > 0.05`) and the map `metrics` holds them all. `has(x)` works on a
bare metric name: it is rewritten to `has(metrics.x)` before compiling, since CEL's `has()` needs a field
selection. Positions in errors point into the condition as written, before that rewrite.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herald.domain.cel_runtime import cel
from herald.models import MetricValue, TriggerRule


class RuleProblem(ValueError):
    """A rule that cannot be used, naming the field and the problem (for CEL, the position in the condition)."""

    def __init__(self, rule: str, field: str, message: str) -> None:
        super().__init__(f"rule {rule}: {field} {message}")
        self.rule, self.field, self.message = rule, field, message


# --- CEL source handling ---------------------------------------------------------------------------

# Named functions the cel package provides natively (operators such as `_>_` or `@in` are always there).
# A name outside this set compiles but fails on every event, so it is refused when the rule is saved.
CEL_FUNCTIONS = frozenset(
    {
        "size",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "dyn",
        "type",
        "getFullYear",
        "getMonth",
        "getDayOfYear",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
# CEL reports type names used as values (`type(x) == int`) as variables; they are never metrics.
_CEL_TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"})
# Operators that can turn an error in one operand into a result: a conjunct using them needs no metric for sure.
_ABSORBING = frozenset({"_&&_", "_||_", "_?_:_", "@not_strictly_false"})
_MACRO_CALL = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(")  # binds names that look like variables
_HAS_BARE = re.compile(r"(?<![\w.])(has\s*\(\s*)([A-Za-z_]\w*)(\s*\))")
_STRING_START = re.compile(r"([rRbB]{0,2})('''|\"\"\"|'|\")")  # prefix letters count only after a non-word char
CEL_TYPE_OF: dict[type, str] = {int: "int", float: "double", str: "string", bytes: "bytes", list: "list", dict: "map"}
_CEL_ERROR = re.compile(r"^ERROR: <input>:(\d+):(\d+): (.*)$")
_METRICS_PREFIX = "metrics."
_METRICS_NAME = re.compile(r"(?<![\w.])metrics(?!\w)")


def _code_spans(source: str) -> list[tuple[int, int]]:
    """The parts of a CEL source that are code: not inside a string literal or a `//` comment."""
    spans: list[tuple[int, int]] = []
    start = i = 0
    while i < len(source):
        if source.startswith("//", i):
            spans.append((start, i))
            end = source.find("\n", i)
            i = start = len(source) if end < 0 else end
            continue
        match = _STRING_START.match(source, i)
        if match is None or (match.group(1) and i > 0 and (source[i - 1].isalnum() or source[i - 1] == "_")):
            i += 1
            continue
        spans.append((start, match.start(2)))
        raw = "r" in match.group(1).lower()
        quote = match.group(2)
        j = match.end()
        while j < len(source) and not source.startswith(quote, j):
            j += 2 if source[j] == "\\" and not raw else 1
        i = start = min(len(source), j + len(quote))
    spans.append((start, len(source)))
    return [(a, b) for a, b in spans if a < b]


def _rewrite_has(source: str) -> tuple[str, list[int], frozenset[str]]:
    """`has(x)` -> `has(metrics.x)` outside strings and comments.

    Also returns the original offsets of the insertions (to place errors) and the names tested.
    """
    out: list[str] = []
    inserted: list[int] = []
    names: set[str] = set()
    last = 0
    for a, b in _code_spans(source):
        for match in _HAS_BARE.finditer(source, a, b):
            out.append(source[last : match.start(2)])
            out.append(_METRICS_PREFIX)
            inserted.append(match.start(2))
            names.add(match.group(2))
            last = match.start(2)
    out.append(source[last:])
    return "".join(out), inserted, frozenset(names)


def _conjuncts(source: str) -> list[str]:
    """The operands of the top-level `&&` chain (the whole source when a top-level `||` or `?:` binds looser)."""
    depth = 0
    cuts: list[int] = []
    for a, b in _code_spans(source):
        i = a
        while i < b:
            char = source[i]
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            elif depth == 0 and (source.startswith("||", i) or char == "?"):
                return [source]
            elif depth == 0 and source.startswith("&&", i):
                cuts.append(i)
                i += 1
            i += 1
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(source[last:cut])
        last = cut + 2
    pieces.append(source[last:])
    return pieces


def _required_metrics(source: str) -> frozenset[str]:
    """Metrics without which the condition cannot be true: skipping the rule when one is absent is exact.

    A top-level conjunct made only of error-propagating operations is an error when one of its variables is
    missing, and `error && anything` is an error or false: either way the rule does not fire.
    """
    required: set[str] = set()
    for piece in _conjuncts(source):
        if any(_MACRO_CALL.search(source_part) for source_part in _code_parts(piece)):
            continue
        try:
            program = cel.compile(piece)
        except (ValueError, RuntimeError):
            continue
        if _ABSORBING.isdisjoint(program.functions()):
            required.update(name for name in program.variables() if name not in _CEL_TYPE_NAMES)
    required.discard("metrics")
    return frozenset(required)


def _code_parts(source: str) -> list[str]:
    return [source[a:b] for a, b in _code_spans(source)]


def _position(source: str, offset: int) -> tuple[int, int, str]:
    """1-based line and column of an offset, and the line itself."""
    line_start = source.rfind("\n", 0, offset) + 1
    line_end = source.find("\n", offset)
    line = source[line_start : len(source) if line_end < 0 else line_end]
    return source.count("\n", 0, offset) + 1, offset - line_start + 1, line


def _pointing(source: str, offset: int, message: str) -> str:
    """`at line L, column C: message` and the line with a caret under the column, as CEL shows it."""
    line_no, column, line = _position(source, offset)
    return f"at line {line_no}, column {column}: {message}\n| {line}\n| {'.' * (column - 1)}^"


def _parse_error(original: str, rewritten: str, inserted: list[int], error: Exception) -> str:
    """CEL's parse error, positioned in the condition as written (before the `has()` rewrite)."""
    text = str(error)
    prefix = f"Failed to parse expression '{rewritten}': "
    text = text.removeprefix(prefix)
    problems: list[str] = []
    lines = rewritten.split("\n")
    for reported in text.split("\n"):
        match = _CEL_ERROR.match(reported)
        if not match:
            continue
        line_no, column = int(match.group(1)), int(match.group(2))
        offset = sum(len(line) + 1 for line in lines[: line_no - 1]) + column - 1
        problems.append(_pointing(original, _original_offset(offset, inserted), match.group(3)))
    return "\n".join(problems) if problems else text.strip()


def _original_offset(offset: int, inserted: list[int]) -> int:
    """Map an offset in the rewritten condition back to the condition as written."""
    shift = 0
    for k, at in enumerate(inserted):
        start = at + k * len(_METRICS_PREFIX)  # where the k-th `metrics.` begins in the rewritten text
        if offset < start:
            break
        shift += min(offset - start, len(_METRICS_PREFIX))
    return max(0, offset - shift)


@dataclass(frozen=True)
class Condition:
    program: Any
    required: frozenset[str]  # metrics without which the rule cannot fire (checked before executing)
    variables: frozenset[str]  # every metric the condition names
    metrics_view: frozenset[str] | None  # what `metrics` must hold: only the names `has()` tests, or (None) all


def compile_condition(rule: TriggerRule) -> Condition:
    source = rule.condition
    rewritten, inserted, tested = _rewrite_has(source)
    try:
        program = cel.compile(rewritten)
    except (ValueError, RuntimeError) as exc:
        raise RuleProblem(rule.name, "condition", _parse_error(source, rewritten, inserted, exc)) from None
    for name in program.functions():
        if name[0].isalpha() and name not in CEL_FUNCTIONS:
            found = _find_call(source, name)
            message = f"unknown function '{name}'"
            raise RuleProblem(rule.name, "condition", _pointing(source, found, message) if found >= 0 else message)
    if all(name in _CEL_TYPE_NAMES for name in program.variables()):
        _check_constant(rule, program)
    names_metrics = any(_METRICS_NAME.search(part) for part in _code_parts(source))
    return Condition(
        program=program,
        required=_required_metrics(rewritten),
        variables=frozenset(program.variables()) - _CEL_TYPE_NAMES - {"metrics"},
        metrics_view=None if names_metrics else tested,
    )


def _find_call(source: str, name: str) -> int:
    pattern = re.compile(rf"(?<![\w]){re.escape(name)}\s*\(")
    for a, b in _code_spans(source):
        match = pattern.search(source, a, b)
        if match:
            return match.start()
    return -1


def _check_constant(rule: TriggerRule, program: Any) -> None:
    """A condition that uses no metric has one value forever: refuse it unless that value is a boolean."""
    try:
        value = program.execute({})
    except Exception as exc:  # any CEL evaluation error means the same here
        raise RuleProblem(rule.name, "condition", f"uses no metric and always fails: {exc}") from None
    if not isinstance(value, bool):
        cel_type = CEL_TYPE_OF.get(type(value), type(value).__name__)
        raise RuleProblem(rule.name, "condition", f"uses no metric and always gives type {cel_type}, not true or false")


def cel_context(metrics: Mapping[str, MetricValue], metrics_view: frozenset[str] | None) -> cel.Context:
    """Hand CEL only the variables it asks for: converting every metric of a big event costs ~50x more.

    `metrics` too holds only what the condition can look at (all of them when the author names the map).
    """

    def resolve(name: str) -> Any:
        if name == "metrics":
            if metrics_view is None:
                return metrics if isinstance(metrics, dict) else dict(metrics)
            return {key: metrics[key] for key in metrics_view if key in metrics}
        if name in _CEL_TYPE_NAMES:
            return None
        return metrics.get(name)

    context = cel.Context()
    context.set_variable_resolver(resolve)
    return context
