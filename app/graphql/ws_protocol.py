"""uvicorn's WebSocket protocol (websockets' sans-I/O), with one ASGI extension: many text
messages written at once.

A subscriber who joins a build late is sent every line so far, each line a message: through
ASGI that is one `websocket.send` per line, each a trip through Starlette and uvicorn and
one write to the socket. `envyard.websocket.send_many` takes a batch of messages (the log's
direct path sends up to 1,000 lines at a time), frames each as websockets does and writes
them together. Servers without it (another ASGI server, or uvicorn's own protocol) do not
advertise it in the scope, and the log path sends one message at a time.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State

SEND_MANY = "envyard.websocket.send_many"
SHARED_LINES = 64  # the most lines a write whose frames are shared (a replay's are not)


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            # read by the application's task, which runs after this returns
            scope["extensions"][SEND_MANY] = {"write": self.write_now}

    def write_now(self, texts: list[str]) -> bool:
        """Write the messages at once if the connection takes them without waiting (open,
        not paused by a slow reader, frames made here); False, having written nothing, for
        the caller to `send` them. A live line to 500 subscribers of a process is 500
        writes: this spares each its trip through ASGI's send."""
        conn = self.conn
        if (
            self.disconnected
            or self.close_sent
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or conn.state is not State.OPEN
            or conn.extensions
            or conn.expect_continuation_frame
        ):
            return False
        # live lines go to every subscriber alike: their frames are shared; a replay's not
        frames = map(_shared_frame if len(texts) <= SHARED_LINES else _frame, texts)
        self.transport.write(b"".join(frames))
        return True

    async def send(self, message: Any) -> None:
        if message["type"] != SEND_MANY:
            await super().send(message)
            return
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if not self.handshake_complete or self.initial_response is not None:
            raise RuntimeError(f"{SEND_MANY} before the WebSocket was accepted")
        if self.close_sent:  # as a websocket.send after the close: nothing is sent
            return
        if self.write_now(message["texts"]):
            return
        try:
            for text in message["texts"]:
                self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))


def _frame(text: str) -> bytes:
    """What websockets writes for an unfragmented, uncompressed text message from a server
    (RFC 6455 5.2: no mask)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


_RECENT: dict[str, bytes] = {}
_RECENT_BYTES = [0]
RECENT_LIMIT = 8 * 1024 * 1024  # bytes of frames kept (lines can be 16,384 characters)


def _shared_frame(text: str) -> bytes:
    """A live line goes to every subscriber of the build as the same message: its frame is
    made once."""
    found = _RECENT.get(text)
    if found is None:
        found = _frame(text)
        if _RECENT_BYTES[0] + len(found) > RECENT_LIMIT or len(_RECENT) >= 4096:
            _RECENT.clear()
            _RECENT_BYTES[0] = 0
        _RECENT[text] = found
        _RECENT_BYTES[0] += len(found)
    return found
