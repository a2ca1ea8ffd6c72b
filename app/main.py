"""The Starlette application: GraphQL over HTTP and WebSocket at /graphql."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from tortoise.contrib.starlette import RegisterTortoise

from app.db.config import tortoise_config
from app.graphql.context import Context
from app.graphql.log_stream import LogStreamHandler
from app.graphql.schema import schema
from app.services.runtime import Runtime, migrate_database, open_runtime
from app.settings import Settings

log = logging.getLogger("envyard")


class EnvyardGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LogStreamHandler

    def __init__(self, runtime_of: Any, allowed_origins: tuple[str, ...]) -> None:
        # Browsers on other origins (a web frontend) must be listed to open a WebSocket.
        super().__init__(
            schema, keep_alive=True, keep_alive_interval=15, allowed_origins=allowed_origins
        )
        self._runtime_of = runtime_of

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

    graphql = EnvyardGraphQL(runtime_of, settings.allowed_origins)
    return Starlette(
        routes=[
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )
