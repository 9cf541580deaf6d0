"""The operator's routes: Prometheus metrics and the health check."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from herald.adapters.metrics import exposition
from herald.api.deps import Deps

router = APIRouter()


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics() -> Response:
    """Prometheus text exposition of this API process's metrics (requests, events, notifications accepted)."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)


@router.get("/healthz", tags=["ops"])
async def healthz(deps: Deps) -> JSONResponse:
    """200 when the store and Temporal both answer, else 503 naming what is down."""
    checks: dict[str, str] = {}
    try:
        await deps.store.ping()
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"down ({type(exc).__name__})"
    try:
        herald = await deps.client()
        await herald.check_health()
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"down ({type(exc).__name__})"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)
