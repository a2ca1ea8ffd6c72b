"""Organizations, users and API tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets

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


async def authenticate(token: str | None) -> User | None:
    if not token or len(token) > 200 or not token.isascii():
        return None
    return await User.get_or_none(token_hash=hash_token(token))


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
