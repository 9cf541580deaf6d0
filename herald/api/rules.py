"""`/v1/rules`: trigger rules, admin only. A rule is compiled before it is saved, so a broken one never lands."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from herald.api.auth import AdminOnly
from herald.api.deps import Deps
from herald.api.errors import ApiError, ErrorBody
from herald.domain.rules import RuleProblem, compile_rule
from herald.models import ID_REGEX, Identifier, TriggerRule

router = APIRouter(
    tags=["rules"],
    dependencies=[AdminOnly],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)

RuleName = Annotated[str, Path(pattern=ID_REGEX, description="the rule's name")]


class RuleInput(TriggerRule):
    """A rule as PUT takes it: `name` may be left out (the path gives it); when present it must match the path."""

    name: Identifier | None = None  # type: ignore[assignment]


class RuleList(BaseModel):
    """Every rule, by name; the same shape `herald rules apply` reads."""

    rules: list[TriggerRule]


def rule_from_input(name: str, body: RuleInput) -> TriggerRule:
    """The rule to save: the path's name, checked against the body's; compiled, so CEL and templates work."""
    if body.name is not None and body.name != name:
        raise ApiError(422, "invalid_rule", f"name: must match the name in the path ({name})", "name")
    rule = TriggerRule.model_validate({**body.model_dump(), "name": name})
    try:
        compile_rule(rule)
    except RuleProblem as problem:
        raise ApiError(422, "invalid_rule", f"{problem.field}: {problem.message}", problem.field) from None
    return rule


@router.put("/v1/rules/{name}", response_model=TriggerRule)
async def put_rule(name: RuleName, body: RuleInput, deps: Deps) -> TriggerRule:
    """Create or replace the rule `name`. Events see the change at once in this process, within a second elsewhere."""
    rule = rule_from_input(name, body)
    await deps.store.rules.put_rule(rule)
    deps.rules.invalidate()
    return rule


@router.get("/v1/rules/{name}", response_model=TriggerRule, responses={404: {"model": ErrorBody}})
async def get_rule(name: RuleName, deps: Deps) -> TriggerRule:
    rule = await deps.store.rules.get_rule(name)
    if rule is None:
        raise ApiError(404, "not_found", f"no rule {name}", "name")
    return rule


@router.get("/v1/rules", response_model=RuleList)
async def list_rules(deps: Deps) -> RuleList:
    return RuleList(rules=await deps.store.rules.list_rules())


@router.delete("/v1/rules/{name}", status_code=204, response_class=Response, responses={404: {"model": ErrorBody}})
async def delete_rule(name: RuleName, deps: Deps) -> Response:
    if not await deps.store.rules.delete_rule(name):
        raise ApiError(404, "not_found", f"no rule {name}", "name")
    deps.rules.invalidate()
    return Response(status_code=204)
