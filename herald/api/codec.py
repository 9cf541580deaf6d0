"""`/codec/encode` and `/codec/decode`: Temporal's codec-server protocol, so the UI and `temporal workflow show
--codec-endpoint http://<api>/codec` can read Herald's encrypted histories.

Both take and answer the `Payloads` protobuf as JSON (`{"payloads": [{"metadata": {k: base64}, "data": base64}]}`)
and answer 400 when the body or a payload is bad. Decoding is reading personal data: with auth on only the admin
key may call them. The Temporal UI calls them from the browser, so its origins (HERALD_UI_ORIGIN) get CORS,
preflight included; every other origin gets none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from herald.adapters.codec import CodecError, EncryptionCodec, codec_for
from herald.api.auth import AdminOnly, AuthError
from herald.api.deps import services_of
from herald.api.errors import ApiError, ErrorBody, error_response
from herald.config import Settings

ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Namespace")
PREFLIGHT_MAX_AGE_SECONDS = 600

PAYLOADS_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["payloads"],
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                # Protobuf's JSON mapping: a field given as null takes its default (empty).
                "properties": {
                    "metadata": {
                        "anyOf": [
                            {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                            {"type": "null"},
                        ]
                    },
                    "data": {"anyOf": [{"type": "string", "format": "byte"}, {"type": "null"}]},
                },
            },
        }
    },
}
INVALID_BODY = 'the body must be Temporal Payloads as JSON: {"payloads": [{"metadata": {...}, "data": "<base64>"}]}'


def allowed_origin(origin: str | None, allowed: Collection[str]) -> str | None:
    """The origin to answer with, if the request comes from one of the UI's origins."""
    if origin is None:
        return None
    origin = origin.rstrip("/")
    return origin if origin in allowed else None


def cors_headers(origin: str, *, preflight: bool = False, requested_headers: str | None = None) -> dict[str, str]:
    """The headers that let the UI at `origin` read the answer (and, for a preflight, send its POST)."""
    headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}
    if preflight:
        names = list(ALLOWED_HEADERS)
        known = {name.lower() for name in names}
        for name in (requested_headers or "").split(","):
            if name.strip() and name.strip().lower() not in known:
                names.append(name.strip())
                known.add(name.strip().lower())
        headers |= {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ", ".join(names),
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        }
    return headers


def parse_payloads(body: bytes) -> list[Payload]:
    """The protocol's JSON, read with protobuf's own JSON rules (base64 for bytes, as the UI sends)."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("payloads"), list):
            raise ValueError("not an object with a payloads list")
        if not all(isinstance(payload, dict) for payload in data["payloads"]):
            raise ValueError("a payload that is not an object")
        message = json_format.ParseDict(data, Payloads(), ignore_unknown_fields=True)
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError is JSON nested absurdly deep.
    except (json_format.ParseError, ValueError, RecursionError):
        raise ApiError(400, "invalid_payloads", INVALID_BODY, "payloads") from None
    return list(message.payloads)


def payloads_json(payloads: Sequence[Payload]) -> dict[str, object]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


class CodecRoute(APIRoute):
    """Adds CORS to every answer for the UI's origins, errors included, so the UI can show why a call failed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = error_response(exc.status, exc.code, exc.message, exc.field)
                if isinstance(exc, AuthError):
                    response.headers.update(exc.headers)
            origin = allowed_origin(request.headers.get("origin"), services_of(request).settings.ui_origins)
            if origin is not None:
                response.headers.update(cors_headers(origin))
            return response

        return with_cors


def codec_router(settings: Settings) -> APIRouter:
    """The codec routes, with the codec from HERALD_CODEC_KEYS or HERALD_HOME/codec.key (codec_for; checked
    now, so a bad key list stops startup).

    Without keys, payloads pass through unchanged: there is nothing to decrypt.
    """
    found = codec_for(settings)
    codec: EncryptionCodec | None = found if isinstance(found, EncryptionCodec) else None
    router = APIRouter(prefix="/codec", tags=["codec"], route_class=CodecRoute)
    responses: dict[int | str, dict[str, object]] = {
        200: {"description": "the payloads, transformed", "content": {"application/json": {"schema": PAYLOADS_SCHEMA}}},
        400: {"model": ErrorBody},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
    }
    body_doc: dict[str, object] = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": PAYLOADS_SCHEMA}}}
    }

    async def transform(request: Request, decode: bool) -> JSONResponse:
        payloads = parse_payloads(await request.body())
        if codec is None:
            return JSONResponse(payloads_json(payloads))
        try:
            result = await (codec.decode(payloads) if decode else codec.encode(payloads))
        except CodecError as exc:
            raise ApiError(400, "codec_error", str(exc), "payloads") from None
        return JSONResponse(payloads_json(result))

    @router.post("/encode", dependencies=[AdminOnly], responses=responses, openapi_extra=body_doc)
    async def encode(request: Request) -> JSONResponse:
        """Encrypt payloads with the first HERALD_CODEC_KEYS key (the UI uses it for signals and queries)."""
        return await transform(request, decode=False)

    @router.post("/decode", dependencies=[AdminOnly], responses=responses, openapi_extra=body_doc)
    async def decode(request: Request) -> JSONResponse:
        """Decrypt payloads with the key named in each one's metadata (admin only: this is personal data)."""
        return await transform(request, decode=True)

    async def preflight(request: Request) -> Response:
        origin = allowed_origin(request.headers.get("origin"), services_of(request).settings.ui_origins)
        if origin is None:
            return error_response(403, "forbidden", "this origin may not call the codec; add it to HERALD_UI_ORIGIN")
        headers = cors_headers(
            origin, preflight=True, requested_headers=request.headers.get("access-control-request-headers")
        )
        if request.headers.get("access-control-request-private-network") == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        return Response(status_code=204, headers=headers)

    # The protocol looks only at the last path segment, so `--codec-endpoint http://<api>/codec/{namespace}`
    # (the CLI's per-namespace template) works too; the keys are the same for every namespace.
    for path, endpoint in (("/encode", encode), ("/decode", decode)):
        router.add_api_route(
            "/{namespace}" + path, endpoint, methods=["POST"], dependencies=[AdminOnly], include_in_schema=False
        )
        for prefix in ("", "/{namespace}"):
            router.add_api_route(prefix + path, preflight, methods=["OPTIONS"], include_in_schema=False)
    return router
