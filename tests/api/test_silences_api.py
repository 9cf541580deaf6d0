"""`/v1/silences` with auth on: the admin silences anything, an agent key only its own agent, a user token only its
own notifications; listing and expiring reach only what the caller could have made. Bad bodies are 422s naming
the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from herald.adapters.store import Store
from herald.models import SilenceState, utcnow
from tests.api.test_auth import Secured


def later(**delta: float) -> str:
    return (utcnow() + timedelta(**delta)).isoformat()


def body(matchers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"matchers": matchers, "ends_at": later(hours=1), "comment": "deploy window"}
    values.update(fields)
    return values


async def test_the_admin_silences_lists_and_expires(secured: Secured, store: Store) -> None:
    made = await secured.call("POST", "/v1/silences", "admin", body({"rule": "disk-full", "max_priority": "critical"}))
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["state"] == "active" and silence["created_by"] == "admin"
    assert silence["matchers"] == {
        "agent_id": None,
        "rule": "disk-full",
        "user_id": None,
        "dedup_key": None,
        "max_priority": "critical",
    }
    stored = await store.silences.get_silence(silence["silence_id"])
    assert stored is not None and stored.comment == "deploy window"

    listed = (await secured.call("GET", "/v1/silences", "admin")).json()["silences"]
    assert [s["silence_id"] for s in listed] == [silence["silence_id"]]
    assert (await secured.call("GET", f"/v1/silences/{silence['silence_id']}", "admin")).json() == silence

    expired = await secured.call("DELETE", f"/v1/silences/{silence['silence_id']}", "admin")
    assert expired.status_code == 200, expired.text
    assert expired.json()["state"] == SilenceState.expired
    again = await secured.call("DELETE", f"/v1/silences/{silence['silence_id']}", "admin")
    assert again.status_code == 200 and again.json() == expired.json(), "expiring again changes nothing"
    assert (await secured.call("GET", "/v1/silences", "admin")).json()["silences"] == []
    with_expired = (await secured.call("GET", "/v1/silences?expired=true", "admin")).json()["silences"]
    assert [s["silence_id"] for s in with_expired] == [silence["silence_id"]]

    typo = await secured.call("GET", "/v1/silences?expird=true", "admin")
    assert typo.status_code == 422 and typo.json()["error"]["field"] == "expird"
    missing = await secured.call("DELETE", "/v1/silences/nope", "admin")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "no silence nope", "field": "silence_id"}


async def test_an_agent_key_silences_its_own_agent_only(secured: Secured) -> None:
    other = await secured.call("POST", "/v1/silences", "support-agent", body({"agent_id": "other-agent"}))
    assert other.status_code == 403
    assert other.json()["error"] == {
        "code": "forbidden",
        "message": "this needs an agent key for other-agent or the admin key",
        "field": "matchers.agent_id",
    }
    unnamed = await secured.call("POST", "/v1/silences", "support-agent", body({"user_id": "ada"}))
    assert unnamed.status_code == 403 and unnamed.json()["error"]["field"] == "matchers.agent_id"
    assert "set matchers.agent_id to support-agent" in unnamed.json()["error"]["message"]

    own = await secured.call("POST", "/v1/silences", "support-agent", body({"agent_id": "support-agent"}))
    assert own.status_code == 201, own.text
    assert own.json()["created_by"] == "agent:support-agent"
    theirs = await secured.call("POST", "/v1/silences", "other-agent", body({"agent_id": "other-agent"}))
    silence_id, their_id = own.json()["silence_id"], theirs.json()["silence_id"]

    listed = (await secured.call("GET", "/v1/silences", "support-agent")).json()["silences"]
    assert [s["silence_id"] for s in listed] == [silence_id]
    # Another agent's silence reads as an unknown one, and can't be expired.
    for method in ("GET", "DELETE"):
        response = await secured.call(method, f"/v1/silences/{their_id}", "support-agent")
        assert response.status_code == 404 and response.json()["error"]["message"] == f"no silence {their_id}"
    assert (await secured.call("GET", f"/v1/silences/{their_id}", "other-agent")).json()["state"] == "active"
    assert (await secured.call("DELETE", f"/v1/silences/{silence_id}", "support-agent")).status_code == 200


async def test_a_user_token_silences_its_own_notifications_only(secured: Secured) -> None:
    bobs = await secured.call("POST", "/v1/silences", "ada", body({"user_id": "bob"}))
    assert bobs.status_code == 403 and bobs.json()["error"]["field"] == "matchers.user_id"
    unnamed = await secured.call("POST", "/v1/silences", "ada", body({"agent_id": "support-agent"}))
    assert unnamed.status_code == 403 and unnamed.json()["error"]["field"] == "matchers.user_id"

    own = await secured.call("POST", "/v1/silences", "ada", body({"user_id": "ada", "agent_id": "support-agent"}))
    assert own.status_code == 201, own.text
    by_admin = await secured.call("POST", "/v1/silences", "admin", body({"user_id": "bob"}))
    ada_id, bob_id = own.json()["silence_id"], by_admin.json()["silence_id"]

    assert [s["silence_id"] for s in (await secured.call("GET", "/v1/silences", "ada")).json()["silences"]] == [ada_id]
    assert [s["silence_id"] for s in (await secured.call("GET", "/v1/silences", "bob")).json()["silences"]] == [bob_id]
    assert (await secured.call("DELETE", f"/v1/silences/{bob_id}", "ada")).status_code == 404
    # The agent ada silenced sees the silence that holds it, but can't lift it; nor can bob lift the admin's.
    held = (await secured.call("GET", "/v1/silences", "support-agent")).json()["silences"]
    assert [s["silence_id"] for s in held] == [ada_id]
    lift = await secured.call("DELETE", f"/v1/silences/{ada_id}", "support-agent")
    assert lift.status_code == 403 and lift.json()["error"]["field"] == "silence_id"
    assert "only its maker (user:ada) or the admin key" in lift.json()["error"]["message"]
    assert (await secured.call("DELETE", f"/v1/silences/{bob_id}", "bob")).status_code == 403
    assert (await secured.call("DELETE", f"/v1/silences/{ada_id}", "ada")).json()["state"] == "expired"
    assert (await secured.call("GET", "/v1/silences", None)).status_code == 401


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"matchers": {}}, "matchers"),
        ({"matchers": {"max_priority": "critical"}}, "matchers"),
        ({"matchers": {"agent_id": "x", "max_priority": "urgent"}}, "matchers.max_priority"),
        ({"comment": ""}, "comment"),
        ({"comment": "x" * 501}, "comment"),
        ({"ends_at": "tomorrow"}, "ends_at"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),  # in the past
        ({"starts_at": "2999-01-01T00:00:00Z"}, "ends_at"),  # ends before it starts
        ({"ends_at": "2999-01-01T00:00:00"}, "ends_at"),  # no time zone
        ({"until": "2999-01-01T00:00:00Z"}, "until"),
    ],
)
async def test_bad_silences_are_422s_naming_the_field(secured: Secured, fields: dict[str, Any], field: str) -> None:
    response = await secured.call("POST", "/v1/silences", "admin", {**body({"agent_id": "support-agent"}), **fields})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert (await secured.call("GET", "/v1/silences", "admin")).json()["silences"] == []
