"""`herald rules apply|list|delete` and `herald event`, run as processes against a store in HERALD_HOME."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from herald.adapters.store import Store
from herald.models import Contact, NotificationStatus, TriggerRule
from herald_cli import (
    app,
    check_rules,
    diff_lines,
    event_fields,
    parse_metric,
    rule_entries,
    rules_diff,
    rules_table,
)
from tests.conftest import Harness
from tests.starter.cli import clean_env, run_cli


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(home: Path) -> dict[str, str]:
    return clean_env(HERALD_HOME=str(home), TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port()}")


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home


async def stored(home: Path, replace: list[dict[str, Any]] | None = None) -> list[TriggerRule]:
    """The rules in HERALD_HOME's store (after replacing them with `replace`, when given)."""
    store = await Store.open(f"sqlite+aiosqlite:///{(home / 'herald.db').resolve()}")
    try:
        if replace is not None:
            await store.rules.replace_rules([TriggerRule.model_validate(r) for r in replace])
        return await store.rules.list_rules()
    finally:
        await store.close()


def rule(name: str, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": name, "condition": "error_rate > 0.1", "user_ids": ["ada"]}
    values.update(fields)
    return values


def write_yaml(path: Path, rules: Any) -> str:
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return str(path)


async def test_apply_is_declarative_create_then_no_change_then_update_and_delete(home: Path, tmp_path: Path) -> None:
    env = base_env(home)
    file = write_yaml(
        tmp_path / "rules.yaml",
        {"rules": [rule("high-errors", agent_id="support-agent", cooldown_seconds=600), rule("slow")]},
    )
    code, out, err = await run_cli(env, "rules", "apply", file)
    assert code == 0, err
    assert out == "created: high-errors, slow\n"
    assert [r.name for r in await stored(home)] == ["high-errors", "slow"]

    code, out, err = await run_cli(env, "rules", "apply", file)
    assert (code, out) == (0, "no changes\n"), err

    # The file is the whole set: a rule left out is deleted, a changed one updated.
    write_yaml(tmp_path / "rules.yaml", [rule("high-errors", agent_id="support-agent", cooldown_seconds=60)])
    code, out, err = await run_cli(env, "rules", "apply", file)
    assert (code, out) == (0, "updated: high-errors\ndeleted: slow\n"), err
    (left,) = await stored(home)
    assert (left.name, left.cooldown_seconds) == ("high-errors", 60)


async def test_a_bad_file_changes_nothing_and_names_each_problem(home: Path, tmp_path: Path) -> None:
    env = base_env(home)
    await stored(home, replace=[rule("keep-me")])

    bad = write_yaml(
        tmp_path / "rules.yaml",
        [
            rule("fine"),
            rule("bad-cel", condition="error_rate > > 1"),
            rule("negative", cooldown_seconds=-5),
            rule("bad-title", title="{{ error_rate "),
            rule("fine"),
            {"condition": "x > 1", "user_ids": ["ada"]},
        ],
    )
    code, out, err = await run_cli(env, "rules", "apply", bad)
    assert (code, out) == (2, ""), err
    lines = err.splitlines()
    assert any(line.startswith(f"{bad}: rule bad-cel: condition at line 1, column") for line in lines), err
    assert f"{bad}: rule negative: cooldown_seconds Input should be greater than or equal to 0" in lines
    assert any(line.startswith(f"{bad}: rule bad-title: title ") for line in lines), err
    assert f"{bad}: rule fine: name appears more than once in the file" in lines
    assert f"{bad}: rule #6: name is required" in lines
    assert "no rule was changed" in err
    assert [r.name for r in await stored(home)] == ["keep-me"], "all or nothing"


def cli(home: Path, *args: str) -> tuple[int, str, str]:
    """The same commands in-process (no Temporal, no os._exit): for the cases around the subprocess tests."""
    env = {k: None for k in os.environ if k.startswith(("HERALD_", "TEMPORAL_"))}
    result = CliRunner().invoke(app, list(args), env={**env, "HERALD_HOME": str(home)})
    return result.exit_code, result.stdout, result.stderr


def test_file_shapes_and_dry_run(home: Path, tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text(json.dumps({"rules": [rule("from-json")]}))
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "scalar.yaml").write_text("just text\n")
    (tmp_path / "broken.yaml").write_text("rules: [\n")
    (tmp_path / "broken.json").write_text("{")
    code, out, err = cli(home, "rules", "apply", "--dry-run", str(tmp_path / "rules.json"))
    assert (code, out) == (0, "created: from-json\ndry run: nothing applied\n"), err
    for name in ("empty.yaml", "scalar.yaml"):
        code, out, err = cli(home, "rules", "apply", str(tmp_path / name))
        assert (code, out) == (2, "") and "expected a list of rules" in err, err
    code, _, err = cli(home, "rules", "apply", str(tmp_path / "broken.yaml"))
    assert code == 2 and "not valid YAML (line 2, column 1)" in err
    code, _, err = cli(home, "rules", "apply", str(tmp_path / "broken.json"))
    assert code == 2 and "not valid JSON" in err
    code, _, err = cli(home, "rules", "apply", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no such file" in err
    bad = write_yaml(tmp_path / "bad.yaml", [rule("bad-cel", condition="error_rate >")])
    code, _, err = cli(home, "rules", "apply", "--dry-run", bad)
    assert code == 2 and f"{bad}: rule bad-cel: condition at line 1" in err, "a dry run checks the file too"
    assert asyncio.run(stored(home)) == []

    assert cli(home, "rules", "apply", str(tmp_path / "rules.json"))[:2] == (0, "created: from-json\n")
    write_yaml(tmp_path / "other.yaml", [rule("other")])
    code, out, _ = cli(home, "rules", "apply", "--dry-run", str(tmp_path / "other.yaml"))
    assert out == "created: other\ndeleted: from-json\ndry run: nothing applied\n"
    assert [r.name for r in asyncio.run(stored(home))] == ["from-json"], "a dry run changes nothing"


def test_list_and_delete(home: Path, tmp_path: Path) -> None:
    assert cli(home, "rules", "list")[:2] == (0, "no rules\n")
    file = write_yaml(
        tmp_path / "rules.yaml",
        [rule("high-errors", agent_id="support-agent", cooldown_seconds=600), rule("off", enabled=False)],
    )
    assert cli(home, "rules", "apply", file)[0] == 0

    code, table, _ = cli(home, "rules", "list")
    assert code == 0 and table.splitlines() == [
        "NAME         AGENT          CONDITION         COOLDOWN  ENABLED",
        "high-errors  support-agent  error_rate > 0.1  600s      yes",
        "off          *              error_rate > 0.1  300s      no",
    ]
    # --json is what `rules apply` reads: applying it back changes nothing.
    code, listed, _ = cli(home, "rules", "list", "--json")
    assert code == 0 and [r["name"] for r in json.loads(listed)["rules"]] == ["high-errors", "off"]
    (tmp_path / "listed.json").write_text(listed)
    assert cli(home, "rules", "apply", str(tmp_path / "listed.json"))[1] == "no changes\n"

    assert cli(home, "rules", "delete", "off")[:2] == (0, "deleted rule off\n")
    assert cli(home, "rules", "delete", "off") == (1, "", "error: no rule off\n")
    assert [r.name for r in asyncio.run(stored(home))] == ["high-errors"]


async def test_event_matching_nothing_needs_no_temporal(home: Path, tmp_path: Path) -> None:
    env = base_env(home)  # TEMPORAL_ADDRESS is a closed port
    await stored(home, replace=[rule("high-errors")])
    (tmp_path / "event.json").write_text(json.dumps({"agent_id": "support-agent", "metrics": {"error_rate": 0.0}}))
    quiet = ["--metric", "error_rate=0.01", "--metric", "region=eu", "--event-id", "evt-1"]
    (code, out, err), (file_code, file_out, file_err), (match_code, match_out, match_err) = await asyncio.gather(
        run_cli(env, "event", "--agent", "support-agent", *quiet),
        run_cli(env, "event", "--json", str(tmp_path / "event.json")),
        # A match needs Temporal; unreachable, the command says so.
        run_cli(env, "event", "--agent", "support-agent", "--metric", "error_rate=0.5"),
    )
    assert code == 0, err
    assert json.loads(out) == {"event_id": "evt-1", "fired": [], "cooled_down": [], "resolved": []}
    assert file_code == 0 and json.loads(file_out)["fired"] == [], file_err
    assert (match_code, match_out) == (1, "") and "cannot reach Temporal" in match_err


async def test_bad_events_name_the_field(home: Path) -> None:
    env = base_env(home)
    results = await asyncio.gather(
        run_cli(env, "event", "--agent", "support-agent", "--metric", "no-equals-sign"),
        run_cli(env, "event", "--agent", "support-agent", "--metric", "x=" + "y" * 300),
    )
    assert results[0][0] == 2 and "--metric: expected name=value" in results[0][2]
    assert results[1][0] == 2 and "error: metrics: metric x: strings are at most 256 characters" in results[1][2]
    assert "y" * 300 not in results[1][2]


def test_event_fields() -> None:
    from_file = {"agent_id": "a", "metrics": {"x": 1}}
    assert event_fields(None, [], None, from_file) == from_file
    assert event_fields("a", ["y=true"], "e1", from_file) == {
        "agent_id": "a",
        "metrics": {"x": 1, "y": True},
        "event_id": "e1",
    }
    assert event_fields("a", ["x=2"], None, None) == {"agent_id": "a", "metrics": {"x": 2}}
    assert event_fields(None, [], None, None) == {}
    for args in [("b", [], None, from_file), (None, [], None, [1]), ("a", ["novalue"], None, None)]:
        with pytest.raises(typer.Exit):
            event_fields(*args)


async def test_event_fires_through_the_monitor(
    herald: Harness, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = base_env(herald.settings.store.home)
    env.update(
        TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        HERALD_TASK_QUEUE=herald.client.task_queue,
    )
    agent = f"agent-{uuid.uuid4().hex[:10]}"
    await herald.store.users.put_contact("ada", Contact(email="ada@example.com"))
    file = write_yaml(tmp_path / "r.yaml", [rule("high-errors", agent_id=agent, channels=["email"])])
    assert (await run_cli(env, "rules", "apply", file))[0] == 0
    code, out, err = await run_cli(env, "event", "--agent", agent, "--metric", "error_rate=0.5")
    assert code == 0, err
    result = json.loads(out)
    assert [f["rule"] for f in result["fired"]] == ["high-errors"]
    (notification_id,) = result["fired"][0]["notification_ids"]
    assert (await herald.client.get_handle(notification_id).outcome()).status is NotificationStatus.delivered


# --- the pure parts ----------------------------------------------------------------------------------


def test_parse_metric() -> None:
    assert parse_metric("ok=true") == ("ok", True)
    assert parse_metric("ok=FALSE") == ("ok", False)
    assert parse_metric("count=12") == ("count", 12) and isinstance(parse_metric("count=12")[1], int)
    assert parse_metric("rate=0.25") == ("rate", 0.25)
    assert parse_metric("big=1e3") == ("big", 1000.0)
    assert parse_metric("region=eu-west") == ("region", "eu-west")
    assert parse_metric("empty=") == ("empty", "")
    assert parse_metric("nan=nan") == ("nan", "nan"), "non-finite numbers stay strings"
    assert parse_metric("expr=a=b") == ("expr", "a=b")
    for bad in ("novalue", "=1"):
        with pytest.raises(ValueError):
            parse_metric(bad)


def test_rule_entries_and_check_rules() -> None:
    assert rule_entries([rule("a")]) == [rule("a")]
    assert rule_entries({"rules": []}) == []
    for bad in (None, "text", {"rules": [], "other": 1}, {"name": "a"}):
        with pytest.raises(ValueError):
            rule_entries(bad)
    rules, problems = check_rules([rule("a"), rule("b", condition="a >"), "not a rule", rule("bad name")])
    assert [r.name for r in rules] == ["a"]
    assert problems[0].startswith("rule b: condition at line 1")
    assert problems[1].startswith("rule #3: rule Input should be a valid dictionary")
    assert problems[2].startswith("rule #4: name must be 1-128 characters")


async def test_rules_diff_agrees_with_the_store(store: Store) -> None:
    current = [TriggerRule.model_validate(rule(n)) for n in ("a", "b", "c")]
    await store.rules.replace_rules(current)
    wanted = [
        TriggerRule.model_validate(rule("a")),
        TriggerRule.model_validate(rule("b", cooldown_seconds=1)),
        TriggerRule.model_validate(rule("d")),
    ]
    predicted = rules_diff(current, wanted)
    assert predicted == await store.rules.replace_rules(wanted)
    assert diff_lines(predicted) == ["created: d", "updated: b", "deleted: c"]
    assert diff_lines(rules_diff(wanted, wanted)) == ["no changes"]


def test_rules_table_shortens_long_conditions() -> None:
    long = TriggerRule.model_validate(rule("long", condition="error_rate > 0.1 && " * 10 + "true"))
    header, row = rules_table([long])
    assert header.split() == ["NAME", "AGENT", "CONDITION", "COOLDOWN", "ENABLED"]
    assert "…" in row and len(row) < 120


def test_resolve_refuses_a_bad_key_naming_the_field_before_connecting(home: Path) -> None:
    """A subprocess: the command ends with os._exit (herald_cli.common.skips_teardown)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "TEMPORAL_"))}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "herald"), "resolve", "--agent", "disk-agent", "--dedup-key", "x" * 201],
        env={**env, "HERALD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.startswith("error: dedup_key"), done.stderr
