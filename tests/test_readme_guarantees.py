"""The README's Guarantees section against the repository: every test it cites exists, and every figure it quotes is
the one a committed results file recorded, at the commit that file names.

A citation is a backticked `tests/<path>.py`, `tests/<path>.py::test_name` or `::test_name` (a test of the file cited
last). This checks that the evidence is there to read, not what the tests assert: that is each test's own job.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Each fault's results file, and the words the README's duplicates line names it by.
FAULTS = {
    "worker-sigkill": "a worker SIGKILL",
    "postgres-stop": "a PostgreSQL stop",
    "temporal-sigkill": "a Temporal crash",
    "api-sigkill": "an API SIGKILL",
}


def guarantees() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Guarantees\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def citations(section: str) -> list[tuple[str, str | None]]:
    """(file, test name or None) for each citation, in order; `::name` resolved against the last file cited."""
    found: list[tuple[str, str | None]] = []
    last: str | None = None
    for token in re.findall(r"`([^`]+)`", section):
        match = re.fullmatch(r"(tests/[\w/]+\.py)?(?:::(\w+))?", token)
        if match is None or not any(match.groups()):
            continue
        path, name = match.groups()
        if path is not None:
            last = path
        assert last is not None, f"`{token}` names a test before any file is cited"
        found.append((last, name))
    return found


@cache
def defined_tests(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def test_every_cited_test_exists() -> None:
    cited = citations(guarantees())
    assert len(cited) > 50  # the parser still finds the section's citations
    missing = [
        f"{path}::{name}" if name else path
        for path, name in cited
        if not (ROOT / path).is_file() or (name is not None and name not in defined_tests(path))
    ]
    assert missing == [], "cited in README.md's Guarantees but not in the repository"


def test_a_citation_parser_that_misses_a_test_would_be_caught() -> None:
    section = "see (`tests/test_readme_guarantees.py::test_every_cited_test_exists`, `::no_such_test`)"
    cited = citations(section)
    assert cited == [
        ("tests/test_readme_guarantees.py", "test_every_cited_test_exists"),
        ("tests/test_readme_guarantees.py", "no_such_test"),
    ]
    assert "no_such_test" not in defined_tests("tests/test_readme_guarantees.py")


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def test_the_quoted_figures_are_the_recorded_ones_at_the_recorded_commit() -> None:
    section = " ".join(guarantees().split())  # the README wraps lines anywhere
    soak = load("soak.json")
    faults = {name: load(f"faults/{name}.json") for name in FAULTS}
    commits = {soak["commit"]} | {result["commit"] for result in faults.values()}
    assert len(commits) == 1, f"the soak and the fault tests ran at different commits: {commits}"
    (commit,) = commits
    quoted = {c[:7] for c in re.findall(r"\bcommit ([0-9a-f]{7,40})\b", section)}
    assert quoted == {commit[:7]}, f"the figures are quoted at {quoted}, recorded at {commit}"
    m = soak["metrics"]
    assert f"{m['notifications']:,} notifications, {m['deliveries_made']:,} of {m['deliveries_expected']:,}" in section
    assert m["lost"] == 0 and "none lost" in section
    assert f"the soak, {m['duplicates']} of {m['deliveries_expected']:,}" in section
    for name, words in FAULTS.items():
        result = faults[name]
        assert result["lost"] == 0, name
        figure = f"{result['duplicate_sends']} of {result['expected_deliveries']:,}"
        assert re.search(re.escape(words) + r"[^;]*?: " + re.escape(figure), section), (
            f"README does not quote {name}.json's {figure!r} after {words!r}"
        )
