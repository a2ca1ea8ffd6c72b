"""Domain errors. Each carries the contract's error code; the GraphQL layer maps them once."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"

    def __init__(self, field: str, message: str, **extensions: Any) -> None:
        super().__init__(message, field=field, **extensions)
        self.field = field


class NameTaken(DomainError):
    code = "NAME_TAKEN"

    def __init__(self, short_name: str) -> None:
        super().__init__(
            f"The short name {short_name!r} is already used in your organization; "
            "choose another one.",
            field="shortName",
        )


class InvalidState(DomainError):
    code = "INVALID_STATE"
