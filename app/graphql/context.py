"""Per-request context: the runtime, and the caller resolved from the bearer token."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeAlias

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from app.db.models import User, Version
from app.domain.errors import Unauthenticated
from app.services import logs
from app.services.runtime import Runtime
from app.services.users import authenticate, bearer_token


@dataclass
class Context:
    runtime: Runtime
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    connection_params: dict[str, Any] | None = None
    _user: User | None = field(default=None, repr=False)
    # Batches the `log` fields of one response into one query. Not a cache: a WebSocket
    # context lives as long as its connection, and a log changes while it builds.
    log_loader: DataLoader[Version, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.log_loader = DataLoader(partial(logs.current_logs, self.runtime), cache=False)

    def _authorization(self) -> str | None:
        if isinstance(self.request, WebSocket):
            params = self.connection_params or {}
            value = params.get("Authorization") or params.get("authorization")
            return value if isinstance(value, str) else None
        return self.request.headers.get("authorization")

    async def user(self) -> User:
        """The caller; UNAUTHENTICATED when the token is missing or unknown."""
        if self._user is None:
            token = bearer_token(self._authorization())
            if token is None:
                raise Unauthenticated(
                    "Send your API token as 'Authorization: Bearer <token>' (on WebSocket, "
                    "under 'Authorization' in the connection_init payload)."
                )
            self._user = await authenticate(token)
            if self._user is None:
                raise Unauthenticated("This API token is not valid.")
        return self._user


Info: TypeAlias = StrawberryInfo[Context, None]
