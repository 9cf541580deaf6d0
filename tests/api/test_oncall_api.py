"""`/v1/escalation-policies` and `/v1/schedules` with auth on: the admin saves, reads, lists and deletes; users and
agents only read; bad bodies are 422s naming the field; a schedule answers who is on call at an instant."""

from __future__ import annotations

import pytest

from tests.api.test_auth import Secured

POLICY = {
    "steps": [
        {"targets": ["schedule:primary"], "ack_within_seconds": 300},
        {"targets": ["user:bob"], "ack_within_seconds": 600},
    ],
    "repeat": 1,
}
SCHEDULE = {
    "time_zone": "Europe/Berlin",
    "rotation": {"members": ["ada", "bob"], "shift_hours": 24, "starts_at": "2026-03-27T09:00:00"},
    "overrides": [{"user_id": "cy", "starts_at": "2026-04-01T09:00:00", "ends_at": "2026-04-02T09:00:00"}],
}


async def test_the_admin_saves_lists_reads_and_deletes_a_policy(secured: Secured) -> None:
    made = await secured.call("PUT", "/v1/escalation-policies/db", "admin", POLICY)
    assert made.status_code == 200, made.text
    assert made.json()["name"] == "db" and made.json()["steps"] == POLICY["steps"] and made.json()["repeat"] == 1
    assert (await secured.call("GET", "/v1/escalation-policies/db", "ada")).json() == made.json()
    assert (await secured.call("GET", "/v1/escalation-policies", "support-agent")).json()["policies"] == [made.json()]
    refused = await secured.call("PUT", "/v1/escalation-policies/db", "ada", POLICY)
    assert refused.status_code == 403
    assert (await secured.call("DELETE", "/v1/escalation-policies/db", "support-agent")).status_code == 403
    assert (await secured.call("DELETE", "/v1/escalation-policies/db", "admin")).status_code == 204
    missing = await secured.call("GET", "/v1/escalation-policies/db", "admin")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"
    assert (await secured.call("DELETE", "/v1/escalation-policies/db", "admin")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": []}, "steps"),
        ({"steps": [{"targets": ["team:x"], "ack_within_seconds": 5}]}, "steps.0.targets"),
        ({"steps": [{"targets": ["user:a"], "ack_within_seconds": 0}]}, "steps.0.ack_within_seconds"),
        ({"steps": [{"targets": ["user:a"], "ack_within_seconds": 5}], "repeat": 4}, "repeat"),
    ],
)
async def test_a_bad_policy_is_a_422_naming_the_field(secured: Secured, body: dict, field: str) -> None:
    refused = await secured.call("PUT", "/v1/escalation-policies/db", "admin", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


async def test_a_schedule_says_who_is_on_call_across_the_spring_change(secured: Secured) -> None:
    made = await secured.call("PUT", "/v1/schedules/primary", "admin", SCHEDULE)
    assert made.status_code == 200, made.text
    assert (await secured.call("GET", "/v1/schedules", "bob")).json()["schedules"] == [made.json()]

    async def who(at: str) -> dict:
        found = await secured.call("GET", f"/v1/schedules/primary/on-call?at={at}", "ada")
        assert found.status_code == 200, found.text
        return found.json()

    # Mar 29: the 09:00 handover is at 07:00 UTC (CEST); the day before, at 08:00 UTC (CET).
    assert (await who("2026-03-29T06:59:59Z"))["user_id"] == "bob"
    assert (await who("2026-03-29T07:00:00Z"))["user_id"] == "ada"
    assert await who("2026-04-01T08:00:00Z") == {
        "schedule": "primary",
        "at": "2026-04-01T08:00:00Z",
        "user_id": "cy",
        "override": True,
    }
    assert (await who("2026-03-01T00:00:00Z"))["user_id"] is None
    naive = await secured.call("GET", "/v1/schedules/primary/on-call?at=2026-03-29T07:00:00", "ada")
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "at"
    assert (await secured.call("GET", "/v1/schedules/nope/on-call", "ada")).status_code == 404
    assert (await secured.call("PUT", "/v1/schedules/primary", "bob", SCHEDULE)).status_code == 403
    assert (await secured.call("DELETE", "/v1/schedules/primary", "admin")).status_code == 204
    assert (await secured.call("GET", "/v1/schedules/primary", "admin")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        (
            {
                "overrides": [
                    {"user_id": "cy", "starts_at": "2026-04-02T09:00:00", "ends_at": "2026-04-02T08:00:00+01:00"}
                ]
            },
            "overrides",
        ),
        (
            {"rotation": {"members": ["a"], "shift_hours": True, "starts_at": "2026-03-27T09:00:00"}},
            "rotation.shift_hours",
        ),
        ({"rotation": {"members": [], "shift_hours": 24, "starts_at": "2026-03-27T09:00:00"}}, "rotation.members"),
        (
            {"rotation": {"members": ["a"], "shift_hours": 0, "starts_at": "2026-03-27T09:00:00"}},
            "rotation.shift_hours",
        ),
    ],
)
async def test_a_bad_schedule_is_a_422_naming_the_field(secured: Secured, change: dict, field: str) -> None:
    refused = await secured.call("PUT", "/v1/schedules/primary", "admin", {**SCHEDULE, **change})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field
