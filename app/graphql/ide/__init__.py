"""GraphiQL served by envyard itself: its page and the pinned browser assets in vendor/.

Strawberry's own page loads React and GraphiQL from a public CDN, so offline or behind a
firewall it never gets past "Loading...". Ours loads the same files from /graphql/ide/.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from strawberry.http.base import BaseRequestProtocol

_PACKAGE = files(__name__)

# The only files served, with their media types. Each name carries its version, so a browser
# may keep a file forever: an upgrade changes the name (vendor/README.md).
ASSETS: dict[str, str] = {
    "react-18.2.0.production.min.js": "text/javascript",
    "react-dom-18.2.0.production.min.js": "text/javascript",
    "graphiql-3.8.3.min.js": "text/javascript",
    "graphiql-3.8.3.min.css": "text/css",
    "plugin-explorer-1.0.2.umd.js": "text/javascript",
    "plugin-explorer-1.0.2.css": "text/css",
}
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


def opens_graphiql(request: BaseRequestProtocol) -> bool:
    """Whether a GET to /graphql is a browser opening GraphiQL rather than a query.

    Strawberry runs any GET with ?query= as GraphQL over HTTP. A browser's page load (it
    accepts text/html) opens GraphiQL instead, with the query prefilled: a navigation carries
    no token, so running the query would fail for all but public fields.
    """
    if request.method != "GET":
        return False
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return True
    return request.query_params.get("query") is None and "*/*" in accept


@cache
def graphiql_page() -> str:
    """The GraphiQL page served at /graphql to browsers; it loads only ASSETS, same origin."""
    return _PACKAGE.joinpath("graphiql.html").read_text(encoding="utf-8")


@cache
def _asset(name: str) -> bytes:
    # About 4 MB in all, read once per process.
    return _PACKAGE.joinpath("vendor", name).read_bytes()


async def serve_asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = ASSETS.get(name)
    if media_type is None:  # a known name only: nothing else under vendor/, no paths
        return PlainTextResponse("Not Found", status_code=404)
    return Response(_asset(name), media_type=media_type, headers=ASSET_HEADERS)


asset_route = Route("/graphql/ide/{name}", serve_asset)
