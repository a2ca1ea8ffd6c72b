"""A WebSocket connection's token is checked again while it lives (ENVYARD_TOKEN_RECHECK,
0.2 s in the test deployments): a token rotated meanwhile ends the subscriptions it was
following with UNAUTHENTICATED, in every mode (the build log comes from a Docker worker through
Redis in the distributed one)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.support.client import Client
from tests.support.ops import BUILD, create, wait_built
from tests.support.server import Server

pytestmark = pytest.mark.e2e

EVENTS = "subscription { environmentEvents { kind environment { shortName } } }"
LOG = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }"


async def next_payload(messages: Any) -> dict[str, Any]:
    return dict(await asyncio.wait_for(anext(messages), 60))


async def test_a_rotated_token_ends_the_events_it_followed(server: Server) -> None:
    token = server.add_user("tokens", "erin")
    old = Client(server.http_url, server.ws_url, token)
    try:
        async with old.subscription(EVENTS) as messages:
            await asyncio.sleep(0.5)  # the server registers the subscription
            await create(old, shortName="t1", fullName="Before")
            first = await next_payload(messages)
            assert first["data"]["environmentEvents"]["environment"]["shortName"] == "t1"
            new = Client(server.http_url, server.ws_url, await rotate(server, "tokens", "erin"))
            try:
                await asyncio.sleep(0.3)  # past the connection's last check
                await create(new, shortName="t2", fullName="After")
            finally:
                await new.aclose()
            refused = await next_payload(messages)
            assert refused.get("data") is None
            assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            with pytest.raises(StopAsyncIteration):  # and the subscription completed
                await next_payload(messages)
    finally:
        await old.aclose()


async def test_a_rotated_token_ends_the_build_log_it_followed(server: Server) -> None:
    token = server.add_user("tokens", "finn")
    old = Client(server.http_url, server.ws_url, token)
    try:
        env = await create(old, shortName="slow", fullName="Slow", pipLibraries=["yard-sloth"])
        version = (await old(BUILD, id=env["id"]))["buildEnvironment"]
        async with old.subscription(LOG, v=version["id"]) as messages:
            first = await next_payload(messages)
            assert first["data"]["buildLog"]["number"] == 1
            new_token = await rotate(server, "tokens", "finn")
            refused: dict[str, Any] = {}
            async for payload in messages:  # lines until the next check refuses it
                if payload.get("errors"):
                    refused = payload
                    break
                assert "Build succeeded" not in payload["data"]["buildLog"]["text"]
            assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        new = Client(server.http_url, server.ws_url, new_token)
        try:
            built = await wait_built(new, env["id"])  # the build itself goes on
            assert built["status"] == "DRAFT"
        finally:
            await new.aclose()
    finally:
        await old.aclose()


async def rotate(server: Server, org: str, username: str) -> str:
    return await asyncio.to_thread(server.new_token, org, username)


async def test_a_rotated_token_ends_every_build_log_of_its_connection(server: Server) -> None:
    """Two logs followed on one connection: once a look finds the token rotated, neither is
    sent another line, and each ends with UNAUTHENTICATED. (The direct writes of live lines
    stop with the token: `Context.verified`, tests/services/test_tokens.py; this build writes
    few lines while its slow page is awaited, so the other log rarely has one to send.)"""
    token = server.add_user("tokens", "gail")
    old = Client(server.http_url, server.ws_url, token)
    try:
        env = await create(old, shortName="two", fullName="Two", pipLibraries=["yard-sloth"])
        version = (await old(BUILD, id=env["id"]))["buildEnvironment"]
        async with old._connection() as ws:
            for op in ("a", "b"):
                payload = {"query": LOG, "variables": {"v": version["id"]}}
                await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
            lines: dict[str, int] = {"a": 0, "b": 0}
            while min(lines.values()) < 1:  # both follow
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message["type"] == "next":
                    lines[message["id"]] += 1
            await rotate(server, "tokens", "gail")
            refused: list[str] = []
            while len(refused) < 2:
                message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if message["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message["type"] == "next" and message["payload"].get("errors"):
                    code = message["payload"]["errors"][0]["extensions"]["code"]
                    assert code == "UNAUTHENTICATED", message
                    refused.append(message["id"])
                elif message["type"] == "next":
                    assert not refused, f"a line after the token was refused: {message}"
            assert sorted(refused) == ["a", "b"]
    finally:
        await old.aclose()
