"""`herald policies set|list|delete` and `herald schedules set|list|who|delete`, in-process on a fresh store."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from herald_cli import app


def cli(home: Path, *args: str) -> tuple[int, str, str]:
    env = {k: None for k in os.environ if k.startswith(("HERALD_", "TEMPORAL_"))}
    result = CliRunner().invoke(app, list(args), env={**env, "HERALD_HOME": str(home)})
    return result.exit_code, result.stdout, result.stderr


def test_policies_set_list_and_delete(tmp_path: Path) -> None:
    code, out, err = cli(
        tmp_path,
        "policies",
        "set",
        "db",
        "--step",
        "user:ada,schedule:primary=300",
        "--step",
        "group:dba=600",
        "--repeat",
        "1",
    )
    assert (code, out) == (0, "policy db: user:ada, schedule:primary (300s); then group:dba (600s), repeated 1x\n"), err
    code, out, _ = cli(tmp_path, "policies", "list", "--json")
    listed = json.loads(out)["policies"]
    assert [(p["name"], p["repeat"], len(p["steps"])) for p in listed] == [("db", 1, 2)]
    code, out, err = cli(tmp_path, "policies", "set", "bad", "--step", "team:x=5")
    assert code == 2 and "steps.0.targets" in err, err
    code, out, err = cli(tmp_path, "policies", "set", "bad", "--step", "user:ada")
    assert code == 2 and "--step user:ada" in err, err
    assert cli(tmp_path, "policies", "delete", "db")[1] == "deleted escalation policy db\n"
    assert cli(tmp_path, "policies", "delete", "db")[0] == 1
    assert cli(tmp_path, "policies", "list")[1] == "no escalation policies\n"


def test_schedules_set_list_and_who_across_the_spring_change(tmp_path: Path) -> None:
    code, out, err = cli(
        tmp_path,
        "schedules",
        "set",
        "primary",
        "ada",
        "bob",
        "--time-zone",
        "Europe/Berlin",
        "--shift-hours",
        "24",
        "--starts-at",
        "2026-03-27T09:00:00",
        "--override",
        "cy=2026-04-01T09:00/2026-04-02T09:00",
    )
    assert code == 0, err
    assert (
        out == "schedule primary: ada, bob in turn, 24h shifts from 2026-03-27T09:00:00 Europe/Berlin, 1 override(s)\n"
    )
    assert cli(tmp_path, "schedules", "list")[1] == out.removeprefix("schedule ")
    who = cli(tmp_path, "schedules", "who", "primary", "--at", "2026-03-29T06:59:00Z")
    assert who[1] == "bob is on call on primary at 2026-03-29T06:59:00+00:00\n", who
    who = cli(tmp_path, "schedules", "who", "primary", "--at", "2026-03-29T07:00:00+00:00")
    assert who[1] == "ada is on call on primary at 2026-03-29T07:00:00+00:00\n", who
    who = cli(tmp_path, "schedules", "who", "primary", "--at", "2026-04-01T10:00:00+02:00")
    assert who[1] == "cy is on call on primary at 2026-04-01T08:00:00+00:00 (override)\n", who
    assert cli(tmp_path, "schedules", "who", "primary", "--at", "2026-03-29T07:00")[0] == 2
    assert cli(tmp_path, "schedules", "who", "nope")[0] == 1
    code, _, err = cli(
        tmp_path,
        "schedules",
        "set",
        "x",
        "ada",
        "--time-zone",
        "Mars/Olympus",
        "--shift-hours",
        "1",
        "--starts-at",
        "2026-01-01T00:00",
    )
    assert code == 2 and "time_zone" in err, err
    assert cli(tmp_path, "schedules", "delete", "primary")[1] == "deleted schedule primary\n"
