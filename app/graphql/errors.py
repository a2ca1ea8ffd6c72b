"""Every error a client sees carries a contract code; internal failures are masked."""

from __future__ import annotations

import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from app.domain.errors import DomainError

log = logging.getLogger("envyard.graphql")

INTERNAL_MESSAGE = "Internal server error; it has been logged."


def coded(error: GraphQLError) -> GraphQLError:
    """The error as the client should see it."""
    original = error.original_error
    if isinstance(original, DomainError):
        return _copy(error, original.message, {"code": original.code, **original.extensions})
    if original is None or error.path is None:
        # Parse, validation and variable coercion errors (raised before any resolver ran,
        # so they have no path): the request itself is wrong.
        return _copy(error, error.message, {"code": "BAD_USER_INPUT", **(error.extensions or {})})
    log.error("internal error in %s", error.path, exc_info=original)
    return _copy(error, INTERNAL_MESSAGE, {"code": "INTERNAL_SERVER_ERROR"})


def _copy(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message=message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(MaskErrors):
    """MaskErrors' hooks (operations, streams, subscriptions) with our own rewriting."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _: True)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return coded(error)
