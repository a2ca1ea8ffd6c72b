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


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    adapter = WebSocketAdapter(None, websocket, websocket)  # type: ignore[arg-type]
    await websocket.send_text("before")
    if not adapter.sends_many:
        await websocket.send_text("one at a time")
        await websocket.close()
        return
    await adapter.send_many([f"line {i}" for i in range(1, 2001)] + ["é ✓"])
    await websocket.send_text("after")
    await websocket.receive_text()
    assert (await websocket.receive())["type"] == "websocket.disconnect"  # the client left
    # uvicorn's own answer to one message now, and the batch's
    try:
        await websocket._send({"type": "websocket.send", "text": "too late"})
        outcomes.append("sent")
    except OSError:
        outcomes.append("disconnected")
    try:
        await adapter.send_many(["too late", "still too late"])
        outcomes.append("sent")
    except WebSocketDisconnected:
        outcomes.append("disconnected")


@contextmanager
def serving(ws: Any) -> Iterator[str]:
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=ws, log_level="warning")
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


async def test_a_batch_arrives_as_its_messages_in_order():
    outcomes.clear()
    with serving(BatchingWebSocketProtocol) as url:
        async with websockets.connect(url) as client:
            received = [await client.recv() for _ in range(2003)]
            await client.send("bye")
        for _ in range(100):
            if len(outcomes) == 2:
                break
            await asyncio.sleep(0.02)
    assert received == ["before", *(f"line {i}" for i in range(1, 2001)), "é ✓", "after"]
    assert outcomes == ["disconnected", "disconnected"]


async def test_other_servers_send_one_message_at_a_time():
    with serving("websockets-sansio") as url:
        async with websockets.connect(url) as client:
            assert [await client.recv() for _ in range(2)] == ["before", "one at a time"]
