"""Organizations, users and API tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time

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


class TokenChecks:
    """A process's token lookups, shared. The callers asking in one moment (a thousand
    WebSocket connections opened together fall due together for their re-checks) are
    answered by one query, and an answer is reused for as long as the caller allows
    (`max_age`; 0: only a lookup that starts after the call, as a request needs)."""

    BATCH = 500  # tokens a query at most
    KEPT = 1024  # answers kept before the stale ones are dropped

    def __init__(self) -> None:
        self._answers: dict[str, tuple[float, User | None]] = {}  # hash -> (asked at, user)
        self._due: dict[str, asyncio.Future[User | None]] = {}  # not yet asked
        self._oldest_kept = 0.0  # the largest max_age asked for: older answers are dropped

    async def user(self, token: str | None, max_age: float = 0.0) -> User | None:
        """The token's user, or None: the answer of a lookup started at most `max_age` s
        ago, or of the next one."""
        if token is None or not well_formed(token):
            return None
        key = hash_token(token)
        if max_age > 0:
            self._oldest_kept = max(self._oldest_kept, max_age)
            answer = self._answers.get(key)
            if answer is not None and time.monotonic() - answer[0] <= max_age:
                return answer[1]
        future = self._due.get(key)
        if future is None:
            if not self._due:  # the first of a batch: it is asked once this moment ends
                asyncio.get_running_loop().create_task(self._look_up())
            future = self._due[key] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
        # shielded: a caller cancelled does not cancel the answer others wait for
        return await asyncio.shield(future)

    async def _look_up(self) -> None:
        due, self._due = self._due, {}
        asked = time.monotonic()
        keys = list(due)
        try:
            found: dict[str, User] = {}
            for at in range(0, len(keys), self.BATCH):
                users = await User.filter(token_hash__in=keys[at : at + self.BATCH])
                found.update((u.token_hash, u) for u in users)
        except BaseException as exc:
            for future in due.values():
                if not future.done():
                    future.set_exception(exc)
            raise
        for key, future in due.items():
            self._answers[key] = (asked, found.get(key))
            if not future.done():
                future.set_result(found.get(key))
        if len(self._answers) > self.KEPT:
            self._answers = {
                k: v for k, v in self._answers.items() if asked - v[0] <= self._oldest_kept
            }


def _retrieved(future: asyncio.Future[User | None]) -> None:
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
