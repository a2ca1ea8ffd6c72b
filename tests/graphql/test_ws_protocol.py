"""The WebSocket protocol's batch of messages (app/graphql/ws_protocol.py), through a real
uvicorn server and a real client: the messages arrive one by one, in order, after what was
sent before them; servers without it say so in the scope; a batch after the client left
meets what a single message meets."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.http.exceptions import WebSocketDisconnected

from app.graphql.transport import WebSocketAdapter
from app.graphql.ws_protocol import BatchingWebSocketProtocol
from tests.support.server import free_port

outcomes: list[str] = []
ways: list[str] = []
# Payloads at the edges of a frame's three length encodings (7 bits, 16 bits, 64 bits).
LENGTHS = ["x" * 125, "y" * 126, "é" * 32767 + "z", "w" * 65536, "v" * 70000]


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    adapter = WebSocketAdapter(None, websocket, websocket)  # type: ignore[arg-type]
    await websocket.send_text("before")
    if adapter.writer is None:
        await websocket.send_text("one at a time")
        await websocket.close()
        return
    await adapter.send_many([f"line {i}" for i in range(1, 2001)] + ["é ✓"])
    for text in LENGTHS:  # one at a time: the frame made once for every connection
        await adapter.send_many([text])
    await adapter.send_many(LENGTHS)
    # nothing waits: written in this step, unless websockets must compress them
    write_now = adapter.writer
    if write_now(["now", "at once"]):
        ways.append("written now")
    else:
        await adapter.send_many(["now", "at once"])
        ways.append("sent")
    await websocket.send_text("after")
    await websocket.receive_text()
    assert (await websocket.receive())["type"] == "websocket.disconnect"  # the client left
    # uvicorn's own answer to one message now, and the batch's
    try:
        await websocket._send({"type": "websocket.send", "text": "too late"})
        outcomes.append("sent")
    except OSError:
        outcomes.append("disconnected")
    assert not write_now(["too late"])  # for send_many to say why
    try:
        await adapter.send_many(["too late", "still too late"])
        outcomes.append("sent")
    except WebSocketDisconnected:
        outcomes.append("disconnected")


@contextmanager
def serving(ws: Any, deflate: bool = False) -> Iterator[str]:
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=ws,
        ws_per_message_deflate=deflate,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("deflate", [False, True])  # frames made here; websockets' own
async def test_a_batch_arrives_as_its_messages_in_order(deflate):
    outcomes.clear()
    ways.clear()
    with serving(BatchingWebSocketProtocol, deflate) as url:
        async with websockets.connect(url, max_size=None) as client:
            received = [await client.recv() for _ in range(2005 + 2 * len(LENGTHS))]
            await client.send("bye")
        for _ in range(100):
            if len(outcomes) == 2:
                break
            await asyncio.sleep(0.02)
    lines = [f"line {i}" for i in range(1, 2001)]
    assert received == ["before", *lines, "é ✓", *LENGTHS, *LENGTHS, "now", "at once", "after"]
    assert outcomes == ["disconnected", "disconnected"]
    assert ways == ["sent" if deflate else "written now"]


async def test_other_servers_send_one_message_at_a_time():
    with serving("websockets-sansio") as url:
        async with websockets.connect(url) as client:
            assert [await client.recv() for _ in range(2)] == ["before", "one at a time"]
