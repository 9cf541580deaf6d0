"""Schemathesis against the API's own OpenAPI spec, on a live `herald api` + `herald worker` with auth on.

Every operation gets generated requests (valid and invalid) as the admin, as a user token and as an agent key.
Every one of schemathesis's response checks runs (conformance to the published status codes, content types,
headers and schemas; negative data refused; positive data accepted) except `not_a_server_error`, which a
narrower check here replaces. Besides: never a 500 and never a 5xx other than the documented 503s, every 4xx
in the one error shape `{"error": {"code", "message", "field"}}`, and, checked after the module's last test
whatever the order, no workflow that a request started failed and no secret reached a log. Bounded: a few
examples per operation, no deadline, so it runs in seconds. Only the generated (stateless) phase runs: the
stateful phase would need OpenAPI links between operations, which the spec does not publish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from herald.api.app import create_app
from herald.config import Settings
from tests.hostile.conftest import LiveStack

SPEC = create_app(Settings().changed(auth=True)).openapi()
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


# The one check left out: it fails every 5xx, and a 503 `temporal_unavailable` / `store_unavailable` is the
# documented answer while a dependency is briefly unreachable (a client retries it). assert_error_shape fails
# a 500 and any other 5xx in its place.
EXCLUDED = [not_a_server_error]


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
# (the SSRF guard: a webhook's, a callback's, a subscription's `url`), a time in the future (respond_by; a silence's ends_at, after its starts_at too), UTF-8 bytes
# rather than characters, a JSON size and depth, a CEL condition and templates that compile, a Web Push key that is
# a P-256 point. A schema-valid body refused for one of these alone is not a mismatch; refused for anything else,
# it is. Also: a rule body's `name` must equal the path's (a cross-parameter rule), and a `cursor` must be one a
# page handed out (opaque by design).
# And an admin's heartbeat ping or delete must name its `agent_id` (an agent key's is its own: a rule about the
# caller).
# A notification's `group` must name a group that exists, and exactly one of user_id or group is given (what the
# published schema leaves to the server); a `quorum`'s count must fit its group; a rule names `user_ids` or `groups`.
SEMANTIC_FIELDS = frozenset(
    {
        "phone",
        "webhook_url",
        "callback_url",
        "url",
        "endpoint",
        "respond_by",
        "ends_at",
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
        "agent_id",
        "group",
        "quorum",
        "user_ids",
        # An on-call schedule's time zone must be one the IANA database knows; an override must end after it starts.
        "time_zone",
        "overrides",
        # A notification or a rule names a group (groups) or an escalation policy, not both.
        "escalation_policy",
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


@pytest.fixture(scope="module")
async def checked_after_fuzzing(stack: LiveStack) -> AsyncIterator[None]:
    """After the last test that uses it, whatever order they ran in: whatever the fuzzing started finished or
    is still running, none failed, the API never crashed, and no secret reached its logs. (The stack is the
    session's: run with the other hostile modules, as without xdist, it covers what they sent too.)

    It used to be a test of its own that meant something only when it happened to run after the others."""
    yield
    async with httpx.AsyncClient(base_url=stack.url) as api:
        assert (await api.get("/healthz")).status_code == 200
    assert await stack.failed_workflows() == []
    crashes = [line for line in stack.log_lines() if is_api_crash(line)]
    assert crashes == []
    logs = stack.log_text()
    for secret in stack.secrets():
        assert secret not in logs


pytestmark = pytest.mark.usefixtures("checked_after_fuzzing")


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


def is_api_crash(line: dict[str, Any]) -> bool:
    """An exception the API did not turn into an answer (uvicorn logs those as errors, with a traceback)."""
    logger = str(line.get("logger", ""))
    return line.get("level") in ("ERROR", "CRITICAL") and logger.startswith(("uvicorn", "herald.api", "fastapi"))
