"""The envyard console: the web pages of the seed documents, served by envyard at `/`.

The pages are a few static files (static/), shipped in the Python package and served as
they are: plain JavaScript modules on the React build GraphiQL already uses
(app/graphql/ide/vendor), no build step, no CDN. Every page speaks only the public GraphQL
API at /graphql, over HTTP for queries and mutations and graphql-transport-ws for the
live build log and events, signed in with an API token kept in the browser's session.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

_STATIC = files(__name__).joinpath("static")

# The only files served under /console/, with their media types.
ASSETS: dict[str, str] = {
    "console.js": "text/javascript",
    "api.js": "text/javascript",
    "pages.js": "text/javascript",
    "admin.js": "text/javascript",
    "ui.js": "text/javascript",
    "console.css": "text/css",
}
# The page and its scripts change with envyard: a browser asks again each time (a 304 when
# unchanged), never running one release's page against another's API.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # Nothing but this origin: its scripts, its styles, its API (HTTP and WebSocket).
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


@cache
def _read(name: str) -> bytes:
    return _STATIC.joinpath(name).read_bytes()


@cache
def _etag(name: str) -> str:
    return f'"{hashlib.sha256(_read(name)).hexdigest()[:20]}"'


def _respond(request: Request, name: str, media_type: str) -> Response:
    etag = _etag(name)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={**HEADERS, "ETag": etag})
    cls = HTMLResponse if media_type == "text/html" else Response
    return cls(_read(name), media_type=media_type, headers={**HEADERS, "ETag": etag})


async def console_page(request: Request) -> Response:
    return _respond(request, "index.html", "text/html")


async def console_asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:  # a known name only: no other file, no paths
        return PlainTextResponse("Not Found", status_code=404)
    return _respond(request, name, media_type)


routes = [Route("/", console_page), Route("/console/{name}", console_asset)]
