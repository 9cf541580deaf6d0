"""Trigger rules: CEL conditions over an agent's metrics, templates for what they send, cooldowns.

Everything here is pure and in-process: an event that matches no rule costs no Temporal or database work.

Conditions are CEL (the `cel` package). Each metric is a variable of its own (`error_rate > 0.05`), and the
map `metrics` holds them all (`metrics.error_rate`, `metrics["error_rate"]`). `has(x)` works on a bare
metric name: it is rewritten to `has(metrics.x)` before compiling, since CEL's `has()` needs a field selection.

A metric the event lacks is an error inside CEL; CEL's `&&`, `||` and `?:` absorb errors the other side makes
irrelevant, so `!has(x) || x > 10` fires without `x`, and any condition that still ends in an error, or in
anything but a boolean, does not fire. Metrics named like CEL types (`int`, `string`, ...) or like reserved words
are reachable only through `metrics`.

Templates are Jinja2 in a sandbox, without HTML escaping (plain text; the email template escapes). They see
every metric by name, `agent_id`, `rule` and `metrics` (these three win over metrics of the same name); a
missing metric renders as an empty string.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cel
from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from herald.models import (
    BODY_MAX_BYTES,
    DEDUP_KEY_MAX_CHARS,
    METADATA_MAX_BYTES,
    TITLE_MAX_CHARS,
    Firing,
    MetricValue,
    TriggerRule,
)

logger = logging.getLogger(__name__)


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
_CEL_TYPE_OF: dict[type, str] = {int: "int", float: "double", str: "string", bytes: "bytes", list: "list", dict: "map"}
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
class _Condition:
    program: Any
    required: frozenset[str]  # metrics without which the rule cannot fire (checked before executing)
    variables: frozenset[str]  # every metric the condition names
    metrics_view: frozenset[str] | None  # what `metrics` must hold: only the names `has()` tests, or (None) all


def _compile_condition(rule: TriggerRule) -> _Condition:
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
    return _Condition(
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
        cel_type = _CEL_TYPE_OF.get(type(value), type(value).__name__)
        raise RuleProblem(rule.name, "condition", f"uses no metric and always gives type {cel_type}, not true or false")


def _context(metrics: Mapping[str, MetricValue], metrics_view: frozenset[str] | None) -> cel.Context:
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


# --- templates -------------------------------------------------------------------------------------

# One sandbox for every rule: templates cannot reach Python internals (`''.__class__` renders as nothing).
_TEMPLATES = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=True)


def _compile_template(rule: TriggerRule, field_name: str, source: str) -> Any:
    try:
        tree = _TEMPLATES.parse(source)
    except TemplateSyntaxError as exc:
        raise RuleProblem(rule.name, field_name, f"at line {exc.lineno}: {exc.message}") from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Include, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Getattr):
            name: object = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Getitem):
            continue
        else:
            raise RuleProblem(rule.name, field_name, f"at line {node.lineno}: templates cannot include or import")
        if isinstance(name, str) and name.startswith("_"):
            message = f"at line {node.lineno}: '{name}' is not allowed (names starting with _ are internal)"
            raise RuleProblem(rule.name, field_name, message)
    return _TEMPLATES.from_string(tree)


def _cut_bytes(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def _metadata(name: str, metrics: Mapping[str, MetricValue]) -> dict[str, Any]:
    """The rule and the event's metrics, or only the rule when the metrics would break the 16 KB limit."""
    metadata: dict[str, Any] = {"rule": name, "metrics": dict(metrics)}
    try:
        size = len(json.dumps(metadata, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError):
        size = METADATA_MAX_BYTES + 1
    return metadata if size <= METADATA_MAX_BYTES else {"rule": name, "metrics_omitted": True}


# --- compiled rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to evaluate: constructing one compiles it (RuleProblem if it cannot work)."""

    rule: TriggerRule
    _condition: _Condition = field(init=False, repr=False, compare=False)
    _title: Any = field(init=False, repr=False, compare=False)
    _body: Any = field(init=False, repr=False, compare=False)
    _dedup_key: Any = field(init=False, repr=False, compare=False)
    _warned: set[str] = field(init=False, repr=False, compare=False, default_factory=set)

    def __post_init__(self) -> None:
        rule = self.rule
        object.__setattr__(self, "_condition", _compile_condition(rule))
        object.__setattr__(self, "_title", _compile_template(rule, "title", rule.title))
        object.__setattr__(self, "_body", _compile_template(rule, "body", rule.body))
        dedup = _compile_template(rule, "dedup_key", rule.dedup_key) if rule.dedup_key else None
        object.__setattr__(self, "_dedup_key", dedup)

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def required(self) -> frozenset[str]:
        """Metrics without which this rule cannot fire: an event lacking one skips it without running CEL."""
        return self._condition.required

    def matches(self, metrics: Mapping[str, MetricValue]) -> bool:
        """True when the condition holds; a metric the condition needs but the event lacks means False."""
        condition = self._condition
        if not metrics.keys() >= condition.required:
            return False
        try:
            result = condition.program.execute(_context(metrics, condition.metrics_view))
        except Exception as exc:  # every CEL failure means "does not fire"
            # A missing metric is routine; a type mismatch on metrics that are all there is the rule's fault.
            if metrics.keys() >= condition.variables:
                self._warn_once("error", "rule %s: condition failed to evaluate (%s); not firing", type(exc).__name__)
            return False
        if isinstance(result, bool):
            return result
        cel_type = _CEL_TYPE_OF.get(type(result), type(result).__name__)
        self._warn_once("type", "rule %s: condition gave type %s, not true or false; not firing", cel_type)
        return False

    def _warn_once(self, kind: str, message: str, detail: str) -> None:
        """Once per compiled rule and kind: a broken rule must not flood the log with one line per event."""
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(message, self.rule.name, detail)

    def firing(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> Firing:
        """The rendered notification content for a match (title, body, dedup_key from the templates).

        Never raises: a template that fails on these metrics (say `{{ x + 1 }}` without `x`) falls back to the
        default title, an empty body or no dedup key, with a warning naming the rule and the field.
        """
        rule = self.rule
        variables: dict[str, Any] = {**metrics, "agent_id": agent_id, "rule": rule.name, "metrics": dict(metrics)}
        title = self._render("title", self._title, variables).strip()[:TITLE_MAX_CHARS].strip()
        if not title:
            title = f"{rule.name} fired for {agent_id}"[:TITLE_MAX_CHARS]
        body = _cut_bytes(self._render("body", self._body, variables), BODY_MAX_BYTES)
        dedup_key: str | None = None
        if self._dedup_key is not None:
            dedup_key = self._render("dedup_key", self._dedup_key, variables).strip()[:DEDUP_KEY_MAX_CHARS] or None
        return Firing(
            rule=rule.name,
            cooldown_seconds=rule.cooldown_seconds,
            user_ids=list(rule.user_ids),
            channels=list(rule.channels),
            priority=rule.priority,
            title=title,
            body=body,
            dedup_key=dedup_key,
            metadata=_metadata(rule.name, metrics),
        )

    def _render(self, field_name: str, template: Any, variables: dict[str, Any]) -> str:
        try:
            return str(template.render(variables))
        except Exception as exc:  # a template failing on one event must not lose the alert
            logger.warning(
                "rule %s: %s template failed (%s); using the fallback", self.rule.name, field_name, type(exc).__name__
            )
            return ""


def compile_rule(rule: TriggerRule) -> CompiledRule:
    """Compile the condition and the templates once; raise RuleProblem if any of them cannot work."""
    return CompiledRule(rule)


class RuleBook:
    """The enabled rules, compiled and indexed by agent (`*` rules apply to every agent).

    A stored rule that no longer compiles is skipped (and listed in `skipped`) rather than failing every event.
    `reuse` hands over a previous book so unchanged rules are not compiled again.
    """

    def __init__(self, rules: Iterable[TriggerRule], *, reuse: RuleBook | None = None) -> None:
        previous = {compiled.rule.name: compiled for compiled in reuse.rules} if reuse else {}
        compiled_rules: list[CompiledRule] = []
        self.skipped: list[RuleProblem] = []
        for rule in rules:
            if not rule.enabled:
                continue
            known = previous.get(rule.name)
            if known is not None and known.rule == rule:
                compiled_rules.append(known)
                continue
            try:
                compiled_rules.append(CompiledRule(rule))
            except RuleProblem as problem:
                self.skipped.append(problem)
                logger.warning("rule %s skipped: its %s does not compile", rule.name, problem.field)
        compiled_rules.sort(key=lambda compiled: compiled.rule.name)
        self.rules: tuple[CompiledRule, ...] = tuple(compiled_rules)
        self._wildcard = tuple(c for c in compiled_rules if c.rule.agent_id == "*")
        own: dict[str, list[CompiledRule]] = {}
        for compiled in compiled_rules:
            if compiled.rule.agent_id != "*":
                own.setdefault(compiled.rule.agent_id, []).append(compiled)
        self._by_agent = {
            agent: tuple(sorted((*rules, *self._wildcard), key=lambda c: c.rule.name)) for agent, rules in own.items()
        }

    def __len__(self) -> int:
        return len(self.rules)

    def candidates(self, agent_id: str) -> tuple[CompiledRule, ...]:
        """The rules that see this agent's events, by name."""
        return self._by_agent.get(agent_id, self._wildcard)

    def matching(self, agent_id: str, metrics: Mapping[str, MetricValue]) -> list[CompiledRule]:
        """The rules whose condition holds for this event, by name."""
        return [compiled for compiled in self.candidates(agent_id) if compiled.matches(metrics)]


def cooldown_until(last_fired: datetime | None, cooldown_seconds: int) -> datetime | None:
    """When a rule that last fired at `last_fired` may fire again (None: it never fired, it may fire now)."""
    if last_fired is None:
        return None
    return last_fired + timedelta(seconds=cooldown_seconds)


def may_fire(last_fired: datetime | None, cooldown_seconds: int, now: datetime) -> bool:
    until = cooldown_until(last_fired, cooldown_seconds)
    return until is None or now >= until
