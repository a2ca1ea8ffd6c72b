"""A tiny GraphQL client for the tests: HTTP through httpx, graphql-transport-ws via websockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets


class GraphQLErrors(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors, indent=1))
        self.errors = errors

    @property
    def code(self) -> str:
        return str(self.errors[0]["extensions"]["code"])

    @property
    def field(self) -> str | None:
        return self.errors[0]["extensions"].get("field")


class Client:
    def __init__(self, http_url: str, ws_url: str, token: str | None) -> None:
        self.http_url = http_url
        self.ws_url = ws_url
        self.token = token
        self._http = httpx.AsyncClient(timeout=60)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def raw(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self._http.post(
            self.http_url, json={"query": query, "variables": variables}, headers=self._headers()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a successful operation; GraphQLErrors otherwise."""
        body = await self.raw(query, **variables)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, **variables: Any) -> GraphQLErrors:
        """The errors of an operation that must fail."""
        body = await self.raw(query, **variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return GraphQLErrors(body["errors"])

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[websockets.ClientConnection]:
        """A graphql-transport-ws connection, initialised and acknowledged."""
        async with websockets.connect(self.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            init: dict[str, Any] = {"type": "connection_init"}
            if self.token:
                init["payload"] = {"Authorization": f"Bearer {self.token}"}
            await ws.send(json.dumps(init))
            ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ack["type"] == "connection_ack", ack
            yield ws

    @staticmethod
    async def _subscribe(
        ws: websockets.ClientConnection,
        query: str,
        variables: dict[str, Any],
        operation_name: str | None = None,
    ) -> None:
        payload: dict[str, Any] = {"query": query, "variables": variables}
        if operation_name is not None:
            payload["operationName"] = operation_name
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))

    @asynccontextmanager
    async def subscription(
        self, query: str, **variables: Any
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Yields an iterator of `next` payloads; it ends at `complete`."""
        async with self._connection() as ws:
            await self._subscribe(ws, query, variables)

            async def messages() -> AsyncIterator[dict[str, Any]]:
                while True:
                    message = json.loads(await ws.recv())
                    kind = message["type"]
                    if kind == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif kind == "next":
                        yield message["payload"]
                    elif kind == "error":
                        yield {"errors": message["payload"]}
                        return
                    elif kind == "complete":
                        return

            yield messages()

    async def frames(
        self, query: str, operation_name: str | None = None, **variables: Any
    ) -> list[str]:
        """The server's frames for one subscription, exactly as sent, up to its last."""
        received: list[str] = []
        async with self._connection() as ws:
            await self._subscribe(ws, query, variables, operation_name)
            while True:
                frame = await asyncio.wait_for(ws.recv(), 120)
                assert isinstance(frame, str)
                kind = json.loads(frame)["type"]
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                    continue
                received.append(frame)
                if kind in ("complete", "error"):
                    return received


async def collect_log(
    client: Client, version_id: str, timeout: float = 120
) -> list[dict[str, Any]]:
    """Every buildLog line of a version until the subscription completes."""
    lines: list[dict[str, Any]] = []

    async def run() -> None:
        async with client.subscription(
            "subscription($v: ID!) { buildLog(versionId: $v) { number text } }", v=version_id
        ) as messages:
            async for payload in messages:
                if payload.get("errors"):
                    raise GraphQLErrors(payload["errors"])
                lines.append(payload["data"]["buildLog"])

    await asyncio.wait_for(run(), timeout)
    return lines
