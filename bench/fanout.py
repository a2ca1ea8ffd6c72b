"""Log fan-out: 1,000 WebSocket subscribers on one build, spread over 2 API processes, and
late joiners replaying 100,000 lines.

Run: .venv/bin/python bench/fanout.py   (needs PostgreSQL and Redis; prints figures)

Two `envyard serve` processes in the distributed mode share PostgreSQL and Redis. The build
is a version left BUILDING in the database whose log this process writes into the Redis
stream, as a worker does (no image is built: the point is the fan-out). Subscribers are
graphql-transport-ws clients in 4 client processes (2 per API), as browsers on other
machines would be.
- live: BENCH_SUBSCRIBERS (default 1,000) subscribers join, then BENCH_LINES (default
  2,000) lines are written at BENCH_RATE lines per second (default 50); each line's latency
  is its arrival at a subscriber (the socket read that brought it) minus the time Redis
  stored it (the stream entry id, ms). The live subscribers are a lean client written here
  on asyncio streams: with the websockets library, the measuring processes took up to a
  core of the two the servers use, and each message's trip through it counted as latency
  (p99 123-175 ms against 29-39 for the same servers). The API processes' CPU time per line
  is printed too, the figure least moved by the rest of the machine.
  They are BENCH_USERS people (default 50, their tokens taken in turn), and each
  connection's token is looked up again every BENCH_TOKEN_RECHECK s (default 30, as
  ENVYARD_TOKEN_RECHECK): the 40 s of lines hold every connection's first re-check, as a
  deployment's long builds do;
- late joiners: a build whose log already holds 100,000 lines; the time for 1 subscriber,
  then 10 at once, to receive every line, on the direct path (a plain buildLog document)
  and, for one joiner, through Strawberry (the same fields with `@include(if: true)`); the
  joiners check each message's type and decode the last one only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db.models import Environment, Version  # noqa: E402
from app.domain.statuses import EnvironmentStatus, VersionStatus  # noqa: E402
from app.logbus import log_key  # noqa: E402
from app.logbus.redis import RedisLogBus  # noqa: E402
from app.services.runtime import database  # noqa: E402
from app.services.users import add_user  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.support.server import base_env, postgres_database, run_server  # noqa: E402

SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "1000"))
LINES = int(os.environ.get("BENCH_LINES", "2000"))
RATE = float(os.environ.get("BENCH_RATE", "50"))
REPLAY = 100_000
REDIS = os.environ.get("ENVYARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
CLIENT_PROCESSES = 4
USERS = int(os.environ.get("BENCH_USERS", "50"))
RECHECK = float(os.environ.get("BENCH_TOKEN_RECHECK", "30"))

DIRECT = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }"
STRAWBERRY = "subscription($v: ID!) { buildLog(versionId: $v) { number text @include(if: true) } }"


@contextlib.asynccontextmanager
async def subscribed(
    ws_url: str, token: str, version_id: str, document: str
) -> AsyncIterator[websockets.ClientConnection]:
    """A graphql-transport-ws connection with one buildLog subscription ("1") sent."""
    async with websockets.connect(
        ws_url, subprotocols=["graphql-transport-ws"], max_size=None, ping_interval=None
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": document, "variables": {"v": version_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        yield ws


def _client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A client's frame (RFC 6455 5.2): final, masked with a zero key (the payload as is)."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


async def subscribe(
    ws_url: str, token: str, version_id: str, document: str, until: int
) -> list[tuple[int, float]]:
    """One live subscriber with a lean client of its own (asyncio streams, frames parsed
    here: one read of the socket takes every frame it holds, a whole library per message
    took most of the clients' CPU on the cores the servers measured use): each line's
    number and arrival time (the read that brought it), until line `until` (or the end)."""
    url = urlsplit(ws_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port, limit=1 << 22)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    writer.write(_client_frame(json.dumps(init).encode()))
    arrivals: list[tuple[int, float]] = []
    buffer, acked = b"", False
    try:
        while True:
            data = await reader.read(1 << 20)
            arrived = time.time()
            if not data:
                raise RuntimeError(f"the server closed the connection after {arrivals[-1:]}")
            buffer += data
            while len(buffer) >= 2:
                opcode, size, at = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
                if size == 126:
                    size, at = int.from_bytes(buffer[2:4], "big"), 4
                elif size == 127:
                    size, at = int.from_bytes(buffer[2:10], "big"), 10
                if len(buffer) < at + size:
                    break
                payload, buffer = buffer[at : at + size], buffer[at + size :]
                if opcode == 0x9:  # the server's ping
                    writer.write(_client_frame(payload, 0xA))
                    continue
                if opcode == 0x8:
                    raise RuntimeError(f"closed ({payload!r}) after {arrivals[-1:]}")
                message = json.loads(payload)
                if not acked:
                    assert message["type"] == "connection_ack", message
                    acked = True
                    subscribe = {"query": document, "variables": {"v": version_id}}
                    writer.write(
                        _client_frame(
                            json.dumps(
                                {"id": "1", "type": "subscribe", "payload": subscribe}
                            ).encode()
                        )
                    )
                    continue
                if message["type"] == "ping":
                    writer.write(_client_frame(b'{"type":"pong"}'))
                    continue
                if message["type"] != "next":
                    return arrivals
                if message["payload"].get("errors"):
                    raise RuntimeError(message["payload"]["errors"])
                number = message["payload"]["data"]["buildLog"]["number"]
                arrivals.append((number, arrived))
                if number >= until:
                    return arrivals
    finally:
        writer.close()


async def replay(ws_url: str, token: str, version_id: str, document: str, until: int) -> int:
    """A late joiner that decodes only the last message it waits for (a client decoding
    every message measures itself); how many `next` messages came before it."""
    count = 0
    async with subscribed(ws_url, token, version_id, document) as ws:
        async for frame in ws:
            if not isinstance(frame, str) or '"type":"next"' not in frame[:40]:
                raise AssertionError(frame)
            count += 1
            if count == until:
                number = json.loads(frame)["payload"]["data"]["buildLog"]["number"]
                assert number == until, number
                return count
    return count


def subscribe_many(
    ws_url: str, tokens: list[str], version_id: str, count: int, document: str, until: int
) -> tuple[list[list[tuple[int, float]]], float]:
    """In a client process: `count` subscribers, the tokens taken in turn; their arrivals,
    and the CPU seconds the process used."""

    async def run() -> list[list[tuple[int, float]]]:
        return list(
            await asyncio.gather(
                *(
                    subscribe(ws_url, tokens[i % len(tokens)], version_id, document, until)
                    for i in range(count)
                )
            )
        )

    used = time.process_time()
    found = asyncio.run(run())
    return found, time.process_time() - used


async def building_version(admin: Any, short: str, *, published: bool = False) -> Version:
    """A version being built; of an environment with a published version 1 (which the whole
    organization sees) when `published`."""
    env = await Environment.create(
        organization_id=admin.organization_id,
        creator_id=admin.id,
        short_name=short,
        full_name="fan-out",
        python_version="3.11",
        status=EnvironmentStatus.IN_PROGRESS,
        published_number=1 if published else None,
    )
    if published:
        await Version.create(environment_id=env.id, number=1, status=VersionStatus.SUCCEEDED)
    number = 2 if published else 1
    return await Version.create(environment_id=env.id, number=number, status=VersionStatus.BUILDING)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system; Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def live(
    bus: RedisLogBus,
    namespace: str,
    ws_urls: list[str],
    tokens: list[str],
    version: Version,
    servers: list[int],
) -> list[str]:
    key = log_key(version.id, version.attempt)
    await bus.append(key, "line 1: the build starts")
    parts = CLIENT_PROCESSES
    shares = [SUBSCRIBERS // parts + (i < SUBSCRIBERS % parts) for i in range(parts)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(parts, mp_context=get_context("spawn")) as pool:
        started = time.time()
        jobs = [
            loop.run_in_executor(
                pool,
                subscribe_many,
                ws_urls[i % len(ws_urls)],
                tokens,
                str(version.id),
                share,
                DIRECT,
                LINES + 1,
            )
            for i, share in enumerate(shares)
        ]
        # Everyone has joined once every subscriber has line 1; give them a while.
        await asyncio.sleep(max(5.0, SUBSCRIBERS / 100))
        joined = time.time() - started
        before = sum(cpu_seconds(pid) for pid in servers)
        for i in range(LINES):
            await bus.append(key, f"line {i + 2}: " + "x" * 60)
            await asyncio.sleep(1 / RATE)
        server_cpu = sum(cpu_seconds(pid) for pid in servers) - before
        await bus.close(key)
        parts_found = await asyncio.gather(*jobs)
        lasted = time.time() - started
    arrivals = [per for part, _ in parts_found for per in part]
    client_cpu = sum(cpu for _, cpu in parts_found) / lasted
    redis = bus._redis
    entries = await redis.xrange(bus.stream(key))
    stored = {int(f["n"]): int(i.split("-")[0]) / 1000 for i, f in entries if "n" in f}
    assert len(arrivals) == SUBSCRIBERS
    assert all([n for n, _ in a] == sorted(stored) for a in arrivals), "lines missed or repeated"
    latencies = [(t - stored[n]) * 1000 for per in arrivals for n, t in per if n > 1]
    return [
        f"live: {SUBSCRIBERS} subscribers over {len(ws_urls)} API processes ({joined:.0f} s to "
        f"join), {LINES} lines at {RATE:.0f}/s: {len(latencies)} deliveries, "
        f"p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms, "
        f"max {max(latencies):.1f} ms   target p99 < 100 ms",
        f"live: the {parts} client processes used {client_cpu:.2f} of this machine's "
        f"{os.cpu_count()} cores, joining and receiving; the {len(servers)} API processes "
        f"{server_cpu * 1000 / LINES:.1f} ms of CPU a line (for {SUBSCRIBERS} subscribers)",
    ]


async def late(bus: RedisLogBus, ws_urls: list[str], token: str, version: Version) -> list[str]:
    key = log_key(version.id, version.attempt)
    redis = bus._redis
    name = bus.stream(key)
    for start in range(0, REPLAY, 5000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(start + 1, start + 5001):
                pipe.xadd(name, {"n": n, "text": f"line {n}: " + "x" * 60})
            await pipe.execute()
    lines = []
    for label, document, count in (
        ("1 late joiner, direct path", DIRECT, 1),
        ("10 late joiners at once, direct path", DIRECT, 10),
        ("1 late joiner, through Strawberry", STRAWBERRY, 1),
    ):
        started = time.perf_counter()
        found = await asyncio.gather(
            *(
                replay(ws_urls[i % len(ws_urls)], token, str(version.id), document, REPLAY)
                for i in range(count)
            )
        )
        took = time.perf_counter() - started
        assert all(f == REPLAY for f in found)
        lines.append(
            f"late join: {label}: {REPLAY:,} lines in {took:.2f} s"
            + ("   target < 1 s" if count == 1 and document is DIRECT else "")
        )
    return lines


async def main() -> None:
    namespace = f"envyard-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as url:
        data = Path(tmp) / "data"
        env = {
            **base_env(data, url, "http://127.0.0.1:9/simple"),
            "ENVYARD_REDIS_URL": REDIS,
            "ENVYARD_QUEUE_NAME": namespace,
            # No worker runs here: the API processes never build; a shared data directory
            # is what the settings ask for of a local builder in the distributed mode.
            "ENVYARD_SHARED_DATA_DIR": "1",
            # Each connection's token is looked up again this often (30 s by default): within
            # the run, as in a deployment's longer builds.
            "ENVYARD_TOKEN_RECHECK": str(RECHECK),
        }
        settings = Settings.from_env(env)
        with run_server(env) as first, run_server(env) as second:
            async with database(settings):
                admin, token = await add_user("fan", "admin", admin=True)
                # the live subscribers are USERS people of the organization, which sees
                # the environment (it has a published version)
                tokens = [token] + [
                    (await add_user("fan", f"user{i}", admin=False))[1] for i in range(1, USERS)
                ]
                running = await building_version(admin, "live", published=True)
                replayed = await building_version(admin, "late")
            bus = RedisLogBus(REDIS, namespace=namespace, retention=600, max_build_seconds=600)
            ws_urls = [first.ws_url, second.ws_url]
            try:
                pids = [first.process.pid, second.process.pid]
                lines = await live(bus, namespace, ws_urls, tokens, running, pids)
                lines += await late(bus, ws_urls, token, replayed)
            finally:
                await bus.aclose()
    print(
        "log fan-out, distributed mode (PostgreSQL, Redis), 2 API processes; the live "
        f"subscribers use {USERS} users' tokens, each connection's checked again every "
        f"{RECHECK:g} s"
    )
    for line in lines:
        print(" ", line)


if __name__ == "__main__":
    asyncio.run(main())
