"""Per-request context: the runtime, and the caller resolved from the bearer token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from app.db.models import User
from app.domain.errors import Unauthenticated
from app.services.runtime import Runtime
from app.services.users import authenticate, bearer_token


@dataclass
class Context:
    runtime: Runtime
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    connection_params: dict[str, Any] | None = None
    _user: User | None = field(default=None, repr=False)

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
