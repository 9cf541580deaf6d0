"""Schemathesis against the API's own OpenAPI spec, on a live `herald api` + `herald worker` with auth on.

Every operation gets generated requests (valid and invalid) as the admin, as a user token and as an agent key.
The properties: never a 5xx (503 `temporal_unavailable` aside, which the spec documents and a client retries),
every 4xx in the one error shape `{"error": {"code", "message", "field"}}`, and no workflow that a request
started fails. Bounded: a few examples per operation, no deadline, so it runs in seconds.
"""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)

from herald.api.app import create_app
from herald.config import Settings
from tests.hostile.conftest import LiveStack

SPEC = create_app(Settings(auth=True)).openapi()
schema = schemathesis.openapi.from_dict(SPEC)


def bounded(examples: int) -> settings:
    """Few examples per operation and no deadline: a property check in `make test`, not a fuzzing campaign."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


# Checks that disagree with the API on purpose (each says why) are left out; the error shape is ours.
EXCLUDED = [
    # 503 is the documented answer while Temporal is briefly unreachable; a real 500 still fails below.
    not_a_server_error,
    # Path parameters fuzzed into `/` or `%2F` land on other routes (404/405), which is correct.
    negative_data_rejection,
    # Errors are JSON everywhere, the HTML pages' included: one shape for every client.
    content_type_conformance,
]


def assert_error_shape(response: Any) -> None:
    """The property every refusal keeps: the one error shape, a message, no 500."""
    status = response.status_code
    assert status != 500, f"{response.request.method} {response.request.url}: 500 {response.text[:500]}"
    if status >= 500:
        assert status == 503, response.text
    if status >= 400 and response.request.method != "HEAD":
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"error"}, response.text
        error = body["error"]
        assert {"code", "message", "field"} <= set(error), response.text
        assert isinstance(error["code"], str) and error["code"], response.text
        assert isinstance(error["message"], str) and error["message"], response.text
        assert error["field"] is None or isinstance(error["field"], str), response.text
        if status == 503:
            assert error["code"] in ("temporal_unavailable", "store_unavailable"), response.text


# What JSON Schema cannot say, by the field a 422 names: a phone number that exists, an address that is public
# (the SSRF guard), a time in the future, UTF-8 bytes rather than characters, a JSON size and depth, a CEL
# condition and templates that compile, a Web Push key that is a P-256 point. A schema-valid body refused for
# one of these alone is not a mismatch; refused for anything else, it is. Also: a rule body's `name` must equal
# the path's (a cross-parameter rule), and a `cursor` must be one a page handed out (opaque by design).
SEMANTIC_FIELDS = frozenset(
    {
        "phone",
        "webhook_url",
        "callback_url",
        "endpoint",
        "respond_by",
        "body",
        "metadata",
        "actions",
        "condition",
        "title",
        "dedup_key",
        "keys.p256dh",
        "keys.auth",
        "name",
        "cursor",
    }
)


def semantic_refusal(response: Any) -> bool:
    """A 422 whose every problem is one the schema cannot describe (SEMANTIC_FIELDS)."""
    if response.status_code != 422:
        return False
    error = response.json()["error"]
    fields = [d.get("field") for d in error.get("details", [])] or [error.get("field")]
    return all(field in SEMANTIC_FIELDS for field in fields)


def check_case(case: Any, stack: LiveStack, who: str | None) -> None:
    response = case.call(base_url=stack.url, headers=stack.headers(who), timeout=30)
    assert_error_shape(response)
    excluded = [*EXCLUDED, positive_data_acceptance] if semantic_refusal(response) else EXCLUDED
    case.validate_response(response, excluded_checks=excluded)
    for secret in stack.secrets():
        assert secret not in response.text, "a secret in a response body"


@schema.parametrize()
@bounded(6)
def test_as_the_admin(case: Any, stack: LiveStack) -> None:
    check_case(case, stack, "admin")


@schema.parametrize()
@bounded(3)
def test_as_a_user_token(case: Any, stack: LiveStack) -> None:
    check_case(case, stack, "ada")


@schema.parametrize()
@bounded(3)
def test_as_an_agent_key(case: Any, stack: LiveStack) -> None:
    check_case(case, stack, "support-agent")


@schema.parametrize()
@bounded(3)
def test_without_credentials(case: Any, stack: LiveStack) -> None:
    check_case(case, stack, None)


async def test_no_request_crashed_a_workflow_or_logged_a_secret(stack: LiveStack) -> None:
    """After all of the above: whatever the fuzzing started finished or is still running, none failed.
    (The stack is the session's: this covers what the other hostile modules sent before, too.)"""
    async with httpx.AsyncClient(base_url=stack.url) as api:
        assert (await api.get("/healthz")).status_code == 200
    assert await stack.failed_workflows() == []
    crashes = [line for line in stack.log_lines() if is_api_crash(line)]
    assert crashes == []
    logs = stack.log_text()
    for secret in stack.secrets():
        assert secret not in logs


def is_api_crash(line: dict[str, Any]) -> bool:
    """An exception the API did not turn into an answer (uvicorn logs those as errors, with a traceback)."""
    logger = str(line.get("logger", ""))
    return line.get("level") in ("ERROR", "CRITICAL") and logger.startswith(("uvicorn", "herald.api", "fastapi"))
