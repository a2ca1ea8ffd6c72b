"""Every error a client sees carries a contract code; internal failures are masked."""

from __future__ import annotations

import logging

from graphql import GraphQLError

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


def stream_failure(exc: Exception) -> DomainError:
    """A subscription stream that failed after it started: logged here, masked for clients.

    Raised from the stream, it reaches clients with code INTERNAL_SERVER_ERROR; an
    exception raised as is would have neither path nor code and read as a bad request.
    """
    log.error("subscription stream failed", exc_info=exc)
    return DomainError(INTERNAL_MESSAGE)


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


def code_in_place(errors: list[GraphQLError]) -> None:
    """Rewrite a result's error list as clients must see it.

    Called from Schema.process_errors, which Strawberry runs for every result that has
    errors (operations, validation, each subscription event). In place, and not as an
    extension hook: a hook would run for every streamed log line, errors or not.
    """
    for index, error in enumerate(errors):
        if not (error.extensions or {}).get("code"):
            errors[index] = coded(error)
