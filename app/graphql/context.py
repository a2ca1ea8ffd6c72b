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

from app.db import models
from app.db.models import User, Version
from app.domain.errors import Unauthenticated
from app.domain.governance import Violation
from app.services import events, logs, policies, rows
from app.services.runtime import Runtime
from app.services.users import bearer_token


@dataclass
class Context:
    runtime: Runtime
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    connection_params: dict[str, Any] | None = None
    _user: User | None = field(default=None, repr=False)
    _checked: float = field(default=0.0, repr=False)  # when the token was last looked up
    # Batches the `log` fields of one response into one query. Not a cache: a WebSocket
    # context lives as long as its connection, and a log changes while it builds.
    log_loader: DataLoader[Version, str] = field(init=False, repr=False)
    # The same for the other per-row fields a listing may select: one query per field and
    # response, whatever the number of rows.
    environment_loader: DataLoader[int, models.Environment] = field(init=False, repr=False)
    user_loader: DataLoader[int, User | None] = field(init=False, repr=False)
    usage_loader: DataLoader[int, events.Usage] = field(init=False, repr=False)
    events_loader: DataLoader[int, list[models.Event]] = field(init=False, repr=False)
    violations_loader: DataLoader[Version, list[Violation]] = field(init=False, repr=False)
    versions_loader: DataLoader[int, list[Version]] = field(init=False, repr=False)
    # The same with package lists, for operations that select packages (see types.py).
    full_versions_loader: DataLoader[int, list[Version]] = field(init=False, repr=False)
    # Whether an operation selects package lists anywhere, by id (with the operation, so
    # that a reused id is never mistaken for it).
    selects_packages: dict[int, tuple[Any, bool]] = field(default_factory=dict, repr=False)
    packages_loader: DataLoader[int, list[dict[str, str]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.log_loader = DataLoader(partial(logs.current_logs, self.runtime), cache=False)
        self.environment_loader = DataLoader(_environments, cache=False)
        self.user_loader = DataLoader(_users, cache=False)
        self.usage_loader = DataLoader(events.usage, cache=False)
        self.events_loader = DataLoader(events.of_environments, cache=False)
        self.violations_loader = DataLoader(policies.violations_for, cache=False)
        self.versions_loader = DataLoader(rows.versions_of, cache=False)
        self.full_versions_loader = DataLoader(
            partial(rows.versions_of, packages=True), cache=False
        )
        self.packages_loader = DataLoader(rows.package_lists, cache=False)

    def _authorization(self) -> str | None:
        if isinstance(self.request, WebSocket):
            params = self.connection_params or {}
            value = params.get("Authorization") or params.get("authorization")
            return value if isinstance(value, str) else None
        return self.request.headers.get("authorization")

    async def user(self) -> User:
        """The caller; UNAUTHENTICATED when the token is missing or unknown.

        An HTTP request is one moment. A WebSocket connection lives on, so the token it
        opened with is looked up again when its last check is older than
        ENVYARD_TOKEN_RECHECK: a token rotated meanwhile ends the subscriptions that ask
        (the build log's and the events' do, as they send)."""
        if self._user is not None and not self.due_for_check():
            return self._user
        token = bearer_token(self._authorization())
        if token is None:
            raise Unauthenticated(
                "Send your API token as 'Authorization: Bearer <token>' (on WebSocket, "
                "under 'Authorization' in the connection_init payload)."
            )
        # The first look is fresh (a lookup started now); a later one of a WebSocket may
        # take another connection's answer about the same token, if as recent, and the
        # connection's next look is due as long after that answer.
        recheck = self.runtime.settings.token_recheck if self._user is not None else 0.0
        websocket = isinstance(self.request, WebSocket)
        checked, user = await self.runtime.tokens.check(token, recheck, keep=websocket)
        self._user, self._checked = user, checked
        if user is None:
            raise Unauthenticated("This API token is not valid.")
        return user

    def verified(self) -> bool:
        """The caller's token was found valid at its last look, which is recent enough
        (`user` would answer without looking again)."""
        return self._user is not None and not self.due_for_check()

    def due_for_check(self) -> bool:
        """A WebSocket connection whose token is to be looked up again (`user` does)."""
        return (
            isinstance(self.request, WebSocket)
            and self.runtime.tokens.clock() - self._checked > self.runtime.settings.token_recheck
        )


async def _environments(ids: list[int]) -> list[models.Environment]:
    """Environments by id (callers checked that they may be seen)."""
    found = {e.id: e for e in await models.Environment.filter(id__in=set(ids))}
    return [found[i] for i in ids]


async def _users(ids: list[int]) -> list[User | None]:
    found = {u.id: u for u in await User.filter(id__in=set(ids))}
    return [found.get(i) for i in ids]


Info: TypeAlias = StrawberryInfo[Context, None]
