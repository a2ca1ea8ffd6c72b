"""What a request body must be before GraphQL sees it: bounded, UTF-8, JSON, sane.

Every refusal is a GraphQL-shaped error coded BAD_USER_INPUT, sent with HTTP 400 (or 413 for
a body over ENVYARD_MAX_BODY_BYTES) since no GraphQL response is possible for a body that is
not a request. On WebSocket the same decoding refuses a frame by closing with 4400 and the
reason, as graphql-transport-ws prescribes for invalid messages. None of these is logged as an
error: they are the client's mistakes, not the server's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, WebSocketDisconnected

from app.graphql.ws_protocol import SEND_MANY

# Deeper than any GraphQL request needs (variables are input objects a few levels deep), far
# below where Python's JSON decoder would hit its recursion limit.
MAX_JSON_DEPTH = 64


class BadRequestBody(json.JSONDecodeError):
    """A body or frame that is not a GraphQL request; `message` says why.

    A JSONDecodeError, so Strawberry's own handling of undecodable WebSocket frames applies.
    """

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message, "", 0)
        self.message = message
        self.field = field
        self.status = status


def error_response(message: str, status: int, field: str | None = None) -> JSONResponse:
    extensions: dict[str, Any] = {"code": "BAD_USER_INPUT"}
    if field is not None:
        extensions["field"] = field
    return JSONResponse(
        {"data": None, "errors": [{"message": message, "extensions": extensions}]},
        status_code=status,
    )


def decode_json(data: str | bytes) -> object:
    """Parse a request body or frame; BadRequestBody says what is wrong with it."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestBody(
                f"The request body is not valid UTF-8 (byte {exc.start})."
            ) from None
    try:
        value = json.loads(data)
    except RecursionError:
        raise BadRequestBody(
            f"The request body is nested more than {MAX_JSON_DEPTH} levels deep."
        ) from None
    except json.JSONDecodeError as exc:
        raise BadRequestBody(f"The request body is not valid JSON ({exc.msg}).") from None
    except ValueError:  # Python reads integers of at most 4300 digits
        raise BadRequestBody("The request body holds a number too long to read.") from None
    _check_value(value)
    return value


def _check_value(value: object) -> None:
    """Depth within bounds, and every string valid Unicode (no lone UTF-16 surrogates,
    which JSON's \\ud800 escapes can produce and no database or UTF-8 encoder accepts).

    One cheap pass; only a refusal walks again to say where the bad text is.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequestBody(
                f"The request body is nested more than {MAX_JSON_DEPTH} levels deep."
            )
        children: Iterable[object]
        if isinstance(item, dict):
            if not all(_encodable(key) for key in item):
                _refuse_text(value)
            children = item.values()
        else:
            children = item if isinstance(item, list) else (item,)
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and not _encodable(child):
                _refuse_text(value)


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_text(value: object, path: tuple[str, ...] = ()) -> None:
    """Raise naming the first string (or key) that is not valid Unicode, with its path."""
    if isinstance(value, str) and not _encodable(value):
        where = ".".join(path) or "the request"
        names = [part for part in path if not part.isdigit()]
        field = names[-1] if len(path) > 1 and path[0] == "variables" and names else None
        raise BadRequestBody(
            f"{where} holds text that is not valid Unicode (a lone UTF-16 surrogate).", field
        )
    if isinstance(value, dict):
        for key, child in value.items():
            _refuse_text(key, path)
            _refuse_text(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _refuse_text(child, (*path, str(index)))


async def read_body(receive: Receive, scope: Scope, limit: int) -> bytes:
    """The whole HTTP body, refused (413) as soon as it is known to exceed `limit` bytes."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise BadRequestBody("The Content-Length header is not a number.") from None
            if declared > limit:
                raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _too_large(limit: int) -> BadRequestBody:
    return BadRequestBody(
        f"The request body is larger than {limit} bytes (ENVYARD_MAX_BODY_BYTES).", status=413
    )


def replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A `receive` that hands over the already-read body once, then listens as before."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


class WebSocketAdapter(ASGIWebSocketAdapter):
    """Closes with 4400 and the specific reason when a frame is not a request; sends
    messages already encoded (the build log's direct path)."""

    async def send_text(self, text: str) -> None:
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    @property
    def writer(self) -> Callable[[list[str]], bool] | None:
        """Where the server writes many messages at once (app/graphql/ws_protocol.py): a
        function writing them at once if it can without waiting, else returning False
        (then `send_many` them). None elsewhere."""
        found: dict[str, Any] | None = self.ws.scope.get("extensions", {}).get(SEND_MANY)
        return None if found is None else found["write"]

    async def send_many(self, texts: list[str]) -> None:
        """The messages, in order, in one write; only where there is a `writer`. Starlette knows
        no such ASGI message, so it goes to the server's `send` itself."""
        try:
            await self.ws._send({"type": SEND_MANY, "texts": texts})
        except OSError as exc:  # uvicorn's ClientDisconnected, as Starlette's send_text
            raise WebSocketDisconnected from exc

    async def iter_json(
        self, *, ignore_parsing_errors: bool = False
    ) -> AsyncGenerator[object, None]:
        frames = super().iter_json(ignore_parsing_errors=ignore_parsing_errors)
        try:
            async for message in frames:
                yield message
        except NonJsonMessageReceived as exc:
            if not isinstance(exc.__cause__, BadRequestBody):
                raise
            # Close reasons are limited to 123 bytes by the WebSocket protocol.
            await self.close(4400, exc.__cause__.message[:120])
        finally:
            await frames.aclose()
