"""`GET /`: the inbox and preference center, one page of static files from herald/web (no build step).

The page logs in from the link `herald tokens issue` prints (`/#token=...`: a fragment never reaches the server
or its logs) and then uses only the public API. The service worker is served from the root, so its scope is
the whole site and Web Push reaches it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

# Everything from this origin; WebSockets to it too ('self' covers ws: and wss: to the same host in CSP 3).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files, and a new version must reach the page at once: revalidate every time.
    "Cache-Control": "no-cache",
}
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
    "/sw.js": ("sw.js", "text/javascript; charset=utf-8"),
    "/icon.svg": ("icon.svg", "image/svg+xml"),
    "/manifest.webmanifest": ("manifest.webmanifest", "application/manifest+json"),
}


@cache
def asset(name: str) -> bytes:
    """A file of the page, read once from the installed package."""
    return resources.files("herald.web").joinpath(name).read_bytes()


def _route(path: str, name: str, media_type: str) -> None:
    async def serve() -> Response:
        return Response(asset(name), media_type=media_type, headers=PAGE_HEADERS)

    serve.__name__ = f"web_{name.replace('.', '_')}"
    router.add_api_route(path, serve, methods=["GET"])


for _path, (_name, _type) in ASSETS.items():
    _route(_path, _name, _type)
