"""Organizations, users and API tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.db.models import Organization, User
from app.domain.environments import check_account_name
from app.domain.errors import BadUserInput, NotFound

DEFAULT_ORG = "default"
DEFAULT_ADMIN = "admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "ey_" + secrets.token_urlsafe(32)


def well_formed(token: str | None) -> bool:
    return token is not None and 0 < len(token) <= 200 and token.isascii()


Answer = tuple[float, "User | None"]  # when the lookup that gave it started, and the user


class TokenChecks:
    """A process's token lookups, shared. The callers asking in one moment (a thousand
    WebSocket connections opened together fall due together for their re-checks) are
    answered by one query; one lookup runs at a time, so an answer is never replaced by an
    older one. A connection's token is kept with its answer, which later callers take while
    it is as recent as they allow (`max_age`; 0: only a lookup that starts after the call,
    as a request and a connection's first check need)."""

    BATCH = 500  # tokens a query at most
    KEPT = 1024  # answers kept before the old ones are dropped

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._answers: dict[str, Answer] = {}  # by token hash: connections' tokens only
        self._due: dict[str, asyncio.Future[Answer]] = {}  # not asked yet
        self._keep: set[str] = set()  # of those, the ones whose answer is kept
        self._task: asyncio.Task[None] | None = None
        self._oldest = 0.0  # the largest max_age asked for: older answers are dropped
        self._pruned = 0  # how many answers the last pruning left

    async def check(self, token: str | None, max_age: float = 0.0, *, keep: bool = False) -> Answer:
        """The token's user (None for no user), and when the lookup that said so started:
        at most `max_age` s ago, or after this call. `keep`: the answer is kept for later
        callers (a WebSocket connection's token, looked up again while it lives); only a
        user's, so unknown tokens sent to the server fill nothing."""
        if token is None or not well_formed(token):
            return self.clock(), None
        key = hash_token(token)
        if max_age > 0:
            self._oldest = max(self._oldest, max_age)
            answer = self._answers.get(key)
            if answer is not None and self.clock() - answer[0] <= max_age:
                return answer
        if keep:
            self._keep.add(key)
        future = self._due.get(key)
        if future is None:
            future = self._due[key] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
        if self._task is None or self._task.done():  # asked once this moment ends
            self._task = asyncio.get_running_loop().create_task(self._look_up())
        # shielded: a caller cancelled does not cancel the answer others wait for
        return await asyncio.shield(future)

    async def _look_up(self) -> None:
        """Ask for the tokens due, batch after batch, until none is."""
        while self._due:
            due, self._due = self._due, {}
            keep, self._keep = self._keep, set()
            asked = self.clock()
            keys = list(due)
            found: dict[str, User] = {}
            try:
                for at in range(0, len(keys), self.BATCH):
                    users = await User.filter(token_hash__in=keys[at : at + self.BATCH])
                    found.update((u.token_hash, u) for u in users)
            except asyncio.CancelledError:  # the process stops: nobody waits forever
                stopped = RuntimeError("The token lookup was stopped.")
                for future in [*due.values(), *self._due.values()]:
                    if not future.done():
                        future.set_exception(stopped)
                raise
            except Exception as exc:
                for future in due.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for key, future in due.items():
                answer = (asked, found.get(key))
                if key in self._answers or (key in keep and answer[1] is not None):
                    self._answers[key] = answer
                if not future.done():
                    future.set_result(answer)
            if len(self._answers) > max(self.KEPT, 2 * self._pruned):
                now = self.clock()
                self._answers = {
                    k: v for k, v in self._answers.items() if now - v[0] <= self._oldest
                }
                self._pruned = len(self._answers)


def _retrieved(future: asyncio.Future[Answer]) -> None:
    if not future.cancelled():
        future.exception()  # a failure nobody waits for any more is not reported unseen


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def add_user(org_name: str, username: str, *, admin: bool) -> tuple[User, str]:
    """Create the organization if new, then the user; returns the user and its token."""
    check_account_name("org", org_name)
    check_account_name("username", username)
    token = new_token()
    try:
        async with in_transaction():
            org, _ = await Organization.get_or_create(name=org_name)
            user = await User.create(
                organization=org, username=username, is_admin=admin, token_hash=hash_token(token)
            )
    except IntegrityError:
        raise BadUserInput(
            "username", f"User {username!r} already exists in organization {org_name!r}."
        ) from None
    return user, token


async def new_user_token(org_name: str, username: str) -> str:
    """A new token for an existing user; the old one stops working at once."""
    token = new_token()
    updated = await User.filter(organization__name=org_name, username=username).update(
        token_hash=hash_token(token)
    )
    if not updated:
        raise NotFound(f"There is no user {username!r} in organization {org_name!r}.")
    return token


async def list_users(org_name: str | None = None) -> list[User]:
    """Every user (of one organization, when named), by organization and name."""
    users = User.all().prefetch_related("organization").order_by("organization__name", "username")
    if org_name is not None:
        users = users.filter(organization__name=org_name)
    return await users


async def bootstrap_admin() -> str | None:
    """On an empty database: org `default` with an admin; returns its token, else None."""
    if await User.exists():
        return None
    _, token = await add_user(DEFAULT_ORG, DEFAULT_ADMIN, admin=True)
    return token
