"""The Starlette application: GraphQL over HTTP and WebSocket at /graphql."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.base import BaseRequestProtocol
from tortoise.contrib.starlette import RegisterTortoise

from app import console
from app.db.config import tortoise_config
from app.graphql.context import Context
from app.graphql.ide import asset_route, graphiql_page, opens_graphiql
from app.graphql.log_stream import LogStreamHandler
from app.graphql.schema import schema
from app.graphql.transport import (
    BadRequestBody,
    WebSocketAdapter,
    decode_json,
    error_response,
    read_body,
    replay,
)
from app.services.runtime import Runtime, migrate_database, open_runtime
from app.settings import Settings

log = logging.getLogger("envyard")


class EnvyardGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LogStreamHandler
    websocket_adapter_class = WebSocketAdapter

    def __init__(self, runtime_of: Any, settings: Settings) -> None:
        # Browsers on other origins (a web frontend) must be listed to open a WebSocket.
        super().__init__(
            schema,
            keep_alive=True,
            keep_alive_interval=15,
            allowed_origins=settings.allowed_origins,
        )
        self._runtime_of = runtime_of
        self._max_body_bytes = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HTTP: the body is read within its bound first; every refusal is a coded JSON error
        (Strawberry answers them in plain text)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            if scope["method"] == "POST":
                receive = replay(await read_body(receive, scope, self._max_body_bytes), receive)
            response: Response = await self.run(Request(scope, receive=receive))
        except BadRequestBody as exc:
            response = error_response(exc.message, exc.status, exc.field)
        except HTTPException as exc:
            cause = exc.__cause__
            if isinstance(cause, BadRequestBody):
                response = error_response(cause.message, cause.status, cause.field)
            else:
                response = error_response(exc.reason, exc.status_code)
        await response(scope, receive, send)

    def parse_json(self, data: str | bytes) -> Any:
        return decode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        # Our own page: its assets come from /graphql/ide/, not from a CDN.
        return HTMLResponse(graphiql_page())

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        return opens_graphiql(request)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return Context(runtime=self._runtime_of(request), request=request, response=response)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await migrate_database(settings)
        async with (
            RegisterTortoise(app, config=tortoise_config(settings.database_url)),
            open_runtime(settings, "api") as runtime,
        ):
            app.state.runtime = runtime
            yield

    def runtime_of(request: Request | WebSocket) -> Runtime:
        runtime: Runtime = request.app.state.runtime
        return runtime

    graphql = EnvyardGraphQL(runtime_of, settings)
    return Starlette(
        routes=[
            *console.routes,
            asset_route,
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )
