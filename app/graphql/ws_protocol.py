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

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

SEND_MANY = "envyard.websocket.send_many"


class BatchingWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        if scope is not None:
            # read by the application's task, which runs after this returns
            scope["extensions"][SEND_MANY] = {}

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
        try:
            for text in message["texts"]:
                self.conn.send_text(text.encode())
        except InvalidState:
            raise ClientDisconnected() from None
        self.transport.write(b"".join(self.conn.data_to_send()))
