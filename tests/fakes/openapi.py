"""Request bodies judged by the providers' own OpenAPI descriptions (`tests/fakes/specs/`), as the fakes do.

`RequestSchema.problems(body)` lists what the real API would refuse in a request body, each as (field path,
message): the fakes answer those requests 400, as SendGrid and Twilio do, so a non-conforming request fails
the test that made it. Formats are checked too, with checkers as strict as the providers: an email address
needs a domain with a dot (SendGrid refuses `herald@localhost`), a phone number is E.164, a short code, an
alphanumeric sender ID or a `channel:address`.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPECS = Path(__file__).parent / "specs"
SENDGRID_SPEC = "tsg_mail_v3.json"
TWILIO_SPEC = "twilio_api_v2010.json"
_DOMAIN_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
_ALPHANUMERIC_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")


def _email(value: object) -> bool:
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    return bool(
        at
        and local
        and len(value) <= 254
        and " " not in local
        and len(labels) >= 2
        and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def _phone_number(value: object) -> bool:
    if not isinstance(value, str):
        return True
    address = value.split(":", 1)[1] if ":" in value else value  # whatsapp:+14155550100, messenger:...
    return bool(_E164.fullmatch(address) or _SHORT_CODE.fullmatch(value) or _ALPHANUMERIC_ID.fullmatch(value))


def format_checker() -> FormatChecker:
    checker = FormatChecker()
    checker.checks("email")(_email)
    checker.checks("phone-number")(_phone_number)
    return checker


@functools.cache
def _spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((SPECS / name).read_text())
    return spec


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)


@dataclass(frozen=True)
class RequestSchema:
    """The request body schema of one operation (`path`, `method`, `media_type`) in one spec file."""

    spec: str
    path: str
    method: str
    media_type: str

    @functools.cached_property
    def schema(self) -> dict[str, Any]:
        return self._resolve(self._operation()["requestBody"])["content"][self.media_type]["schema"]  # type: ignore[no-any-return]

    @functools.cached_property
    def _validator(self) -> Draft202012Validator:
        document = _spec(self.spec)
        uri = f"urn:herald-test:{self.spec}"
        registry: Registry[Any] = Registry().with_resource(uri, Resource.from_contents(document, DRAFT202012))
        body = self._operation()["requestBody"]
        parts = ["paths", self.path, self.method, "requestBody"]
        if "$ref" in body:
            parts = body["$ref"].removeprefix("#/").split("/")
        pointer = _pointer(*parts, "content", self.media_type, "schema")
        return Draft202012Validator({"$ref": uri + pointer}, registry=registry, format_checker=format_checker())

    def _operation(self) -> dict[str, Any]:
        return _spec(self.spec)["paths"][self.path][self.method]  # type: ignore[no-any-return]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = _spec(self.spec)
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def problems(self, body: Any) -> list[tuple[str, str]]:
        """(field path, message) for each way `body` breaks the schema, the path as SendGrid names fields."""
        found = []
        for error in sorted(self._validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
            field = ".".join(str(part) for part in error.absolute_path) or "body"
            found.append((field, error.message))
        return found

    def form(self, form: dict[str, list[str]]) -> dict[str, Any]:
        """A form-encoded body as the JSON the schema describes: one value per field unless the field is an
        array, numbers and booleans read as such (a value that isn't one stays a string and fails)."""
        properties = self.schema.get("properties", {})
        document: dict[str, Any] = {}
        for name, values in form.items():
            kind = self._resolve(properties.get(name, {})).get("type")
            if kind == "array":
                document[name] = values
                continue
            document[name] = values if len(values) > 1 else _typed(values[0], kind)
        return document


def _typed(value: str, kind: object) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


SENDGRID_MAIL_SEND = RequestSchema(SENDGRID_SPEC, "/v3/mail/send", "post", "application/json")
TWILIO_CREATE_MESSAGE = RequestSchema(
    TWILIO_SPEC, "/2010-04-01/Accounts/{AccountSid}/Messages.json", "post", "application/x-www-form-urlencoded"
)


def twilio_conditional_problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Twilio's `x-twilio.conditional` on CreateMessage: one of From / MessagingServiceSid, and one of Body /
    MediaUrl / ContentSid (the schema's `required` lists only To)."""
    operation = TWILIO_CREATE_MESSAGE._operation()
    problems = []
    for group in operation.get("x-twilio", {}).get("conditional", []):
        names = ["".join(word.capitalize() for word in name.split("_")) for name in group]
        if not any(document.get(name) not in (None, "", []) for name in names):
            problems.append((names[0], f"one of {', '.join(names)} is required"))
    return problems
