"""`/v1/groups` with auth on: the admin saves, lists, reads and deletes groups; an agent key or a user token is
refused; bad bodies are 422s naming the field. And `herald groups set|list|delete` on HERALD_HOME's store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herald.adapters.store import Store
from tests.api.test_auth import Secured
from tests.starter.test_silences_tools import cli


async def test_the_admin_saves_lists_reads_and_deletes_groups(secured: Secured, store: Store) -> None:
    made = await secured.call("PUT", "/v1/groups/sre", "admin", {"members": ["grace", "ada"]})
    assert made.status_code == 200, made.text
    saved = made.json()
    assert saved["name"] == "sre" and saved["members"] == ["grace", "ada"]
    assert (await secured.call("GET", "/v1/groups/sre", "admin")).json() == saved
    assert await store.groups.members("sre") == ["grace", "ada"]

    again = (await secured.call("PUT", "/v1/groups/sre", "admin", {"members": ["ada", "linus"]})).json()
    assert again["members"] == ["ada", "linus"] and again["created_at"] == saved["created_at"]
    await secured.call("PUT", "/v1/groups/db", "admin", {"members": ["edgar"]})
    listed = (await secured.call("GET", "/v1/groups", "admin")).json()["groups"]
    assert [(g["name"], g["members"]) for g in listed] == [("db", ["edgar"]), ("sre", ["ada", "linus"])]

    assert (await secured.call("DELETE", "/v1/groups/sre", "admin")).status_code == 204
    assert await store.groups.members("sre") is None
    missing = await secured.call("GET", "/v1/groups/sre", "admin")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "no group sre", "field": "name"}
    assert (await secured.call("DELETE", "/v1/groups/sre", "admin")).status_code == 404


@pytest.mark.parametrize("who", ["ada", "support-agent", None])
async def test_groups_take_the_admin_key(secured: Secured, who: str | None) -> None:
    for method, path, body in [
        ("PUT", "/v1/groups/sre", {"members": ["ada"]}),
        ("GET", "/v1/groups", None),
        ("GET", "/v1/groups/sre", None),
        ("DELETE", "/v1/groups/sre", None),
    ]:
        refused = await secured.call(method, path, who, body)
        assert refused.status_code == (401 if who is None else 403), (method, path, refused.text)


@pytest.mark.parametrize(
    "body",
    [{}, {"members": []}, {"members": ["ada", "ada"]}, {"members": ["not a user"]}, {"members": ["ada"], "x": 1}],
)
async def test_bad_groups_are_422s_naming_the_field(secured: Secured, body: dict[str, object]) -> None:
    refused = await secured.call("PUT", "/v1/groups/sre", "admin", body)
    assert refused.status_code == 422, refused.text
    field = refused.json()["error"]["field"]
    assert field is not None and field.split(".")[0] in ("members", "x"), refused.json()


async def test_a_bad_group_name_is_refused(secured: Secured) -> None:
    refused = await secured.call("PUT", "/v1/groups/-bad", "admin", {"members": ["ada"]})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "name", refused.text


def test_cli_sets_lists_and_deletes_groups(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli(home, "groups", "list")[1] == "no groups\n"
    code, out, err = cli(home, "groups", "set", "sre", "grace", "ada")
    assert (code, out) == (0, "group sre: grace, ada\n"), err
    assert cli(home, "groups", "set", "db", "edgar")[0] == 0
    assert cli(home, "groups", "list")[1] == "db: edgar\nsre: grace, ada\n"
    listed = json.loads(cli(home, "groups", "list", "--json")[1])["groups"]
    assert [g["members"] for g in listed] == [["edgar"], ["grace", "ada"]]

    code, _, err = cli(home, "groups", "set", "sre", "ada", "ada")
    assert code == 2 and "members" in err and "once" in err, err
    assert cli(home, "groups", "delete", "sre")[1] == "deleted group sre\n"
    assert cli(home, "groups", "delete", "sre")[0:3:2] == (1, "error: no group sre\n")


async def test_a_notification_to_a_group_is_refused_naming_the_field(secured: Secured) -> None:
    """Before anything starts: an unknown group (422 naming `group`), both or neither of user_id and group, a
    quorum the group can never reach (422 naming `quorum`)."""
    await secured.call("PUT", "/v1/groups/pair", "admin", {"members": ["ada", "grace"]})
    actions = [{"id": "approve", "label": "Approve"}, {"id": "deny", "label": "Deny"}]
    base = {"agent_id": "support-agent", "title": "Deploy?"}
    cases = [
        ({**base, "group": "nobody-here"}, "group", "no group nobody-here"),
        ({**base}, "group", "exactly one of user_id or group"),
        ({**base, "group": "pair", "user_id": "ada"}, "group", "exactly one of user_id or group"),
        (
            {**base, "group": "pair", "actions": actions, "quorum": {"action": "approve", "count": 3}},
            "quorum",
            "2 members",
        ),
        (
            {**base, "user_id": "ada", "actions": actions, "quorum": {"action": "approve", "count": 1}},
            "quorum",
            "group",
        ),
    ]
    for body, field, says in cases:
        refused = await secured.call("POST", "/v1/notifications", "support-agent", body)
        assert refused.status_code == 422, (body, refused.text)
        error = refused.json()["error"]
        assert error["field"] == field and says in error["message"], (body, error)
