"""Standalone benchmarks: build times through the API, and log line latency over WebSocket.

Run: .venv/bin/python bench/standalone.py   (prints figures; asserts nothing)

- builds: a 10-package environment from a warm cache, the next version adding one package,
  and a revert, each timed from the buildEnvironment/revertEnvironment mutation to the end of
  its buildLog subscription (on one WebSocket connection the client keeps, as a console
  page does), by a client of an `envyard serve` process (a server in this process would
  share its interpreter, and its lock, with the client: 20-40 ms a build).
  Each round times raw `uv venv` + `uv pip install` of the same set (with envyard's warm uv
  cache and the interpreter envyard builds with) just before envyard's build, and prints
  the median of the rounds' ratios; and `python -m venv` + `pip install` with pip's cache
  warm, all from the same local index.
- log latency: the time from the builder writing a line (the log bus append, in the server)
  to a graphql-transport-ws subscriber receiving it, over many real builds; lines written
  before the subscriber asked for the log (the first lines of a fast build, replayed when it
  joins) are not counted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import websockets
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.builders.local import discover_pythons  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services.runtime import database  # noqa: E402
from app.services.users import add_user  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.support.client import Client  # noqa: E402
from tests.support.index import CATALOGUE, TEN, serve_index, write_index  # noqa: E402
from tests.support.ops import BUILD, UPDATE, create, wait_built  # noqa: E402
from tests.support.server import base_env, free_port, run_server  # noqa: E402

TEN_NAMES = [d.name for d in TEN]


def start_server(settings: Settings, port: int) -> tuple[uvicorn.Server, Any]:
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, app


class Follower:
    """A client's one graphql-transport-ws connection, kept open, on which each build's log
    is a new subscription (as a console page keeps its connection): a connection per build
    would time a WebSocket handshake and sign-in too."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def collect(self, version_id: str) -> int:
        """Follow that version's log to its end; how many lines came."""
        op = str(next(self._ids))
        payload = {"query": LOG, "variables": {"v": version_id}}
        await self._ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))
        lines = 0
        while True:
            message = json.loads(await asyncio.wait_for(self._ws.recv(), 120))
            if message["type"] == "ping":
                await self._ws.send(json.dumps({"type": "pong"}))
            elif message.get("id") != op:
                continue
            elif message["type"] == "next":
                assert not message["payload"].get("errors"), message
                lines += 1
            elif message["type"] == "complete":
                return lines
            else:
                raise AssertionError(message)


LOG = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }"
# What a client starting a build needs back: the version to follow (tests/support/ops.py's
# BUILD asks for every field of it, its log included).
BUILD_ID = "mutation($id: ID!) { buildEnvironment(id: $id) { id } }"
REVERT_ID = "mutation($id: ID!, $v: Int!) { revertEnvironment(id: $id, version: $v) { id } }"


async def timed_build(client: Client, follower: Follower, env_id: str) -> float:
    start = time.perf_counter()
    version = (await client(BUILD_ID, id=env_id))["buildEnvironment"]
    assert await follower.collect(version["id"])
    elapsed = time.perf_counter() - start
    env = await wait_built(client, env_id)
    assert env["status"] == "DRAFT", env
    return elapsed


async def timed_revert(client: Client, follower: Follower, env_id: str, number: int) -> float:
    start = time.perf_counter()
    version = (await client(REVERT_ID, id=env_id, v=number))["revertEnvironment"]
    assert await follower.collect(version["id"])
    elapsed = time.perf_counter() - start
    env = await wait_built(client, env_id)
    assert env["status"] == "DRAFT", env
    return elapsed


def pip_baseline(index_url: str, work: Path) -> float:
    """python -m venv + pip install of the same 10 packages; pip's cache warmed first."""
    env = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_CACHE_DIR": str(work / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for k in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        env.pop(k, None)

    def once(target: Path) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, env=env)
        subprocess.run(
            [str(target / "bin" / "pip"), "install", "-q", "--index-url", index_url, *TEN_NAMES],
            check=True,
            env=env,
        )
        return time.perf_counter() - start

    once(work / "pip-warm")
    return min(once(work / f"pip-{i}") for i in range(3))


class RawUv:
    """`uv venv` + `uv pip install` of a set from the same index, with envyard's own uv cache
    (warm from its builds) and the interpreter envyard builds with: the least any uv-based
    build can take. Timed alternately with envyard's builds: this machine's speed drifts
    (the same raw install takes 54 ms in one minute and 100 in another), so each round's
    ratio compares neighbours."""

    def __init__(self, index_url: str, cache: Path, work: Path, python: str) -> None:
        self._uv = find_uv_bin()
        self._env = {"PATH": os.environ["PATH"], "HOME": str(work), "UV_CACHE_DIR": str(cache)}
        self._env["UV_PYTHON_DOWNLOADS"] = "never"
        self._index = ["--index-url", index_url]
        self._work, self._python = work, python
        self._made = 0

    def _run(self, *args: str) -> None:
        subprocess.run([self._uv, *args], check=True, env=self._env, cwd=self._work)

    def once(self, names: list[str]) -> float:
        self._made += 1
        target = self._work / f"uv-{self._made}"
        start = time.perf_counter()
        self._run("venv", "-q", "--no-project", "--python", self._python, str(target))
        python = str(target / "bin" / "python")
        self._run("pip", "install", "-q", "--python", python, *self._index, *names)
        return time.perf_counter() - start


async def builds(client: Client, raw: RawUv, rounds: int) -> dict[str, list[float]]:
    async with client._connection() as ws:
        return await _builds(client, Follower(ws), raw, rounds)


async def _builds(
    client: Client, follower: Follower, raw: RawUv, rounds: int
) -> dict[str, list[float]]:
    warm = await create(client, pipLibraries=TEN_NAMES)
    await timed_build(client, follower, warm["id"])  # fills uv's cache
    await asyncio.to_thread(raw.once, [*TEN_NAMES, "yard-extra"])
    results: dict[str, list[float]] = {
        k: [] for k in ("ten", "add_one", "revert", "raw_ten", "raw_eleven")
    }
    for _ in range(rounds):
        env = await create(client, pipLibraries=TEN_NAMES)
        results["raw_ten"].append(await asyncio.to_thread(raw.once, TEN_NAMES))
        results["ten"].append(await timed_build(client, follower, env["id"]))
        await client(UPDATE, id=env["id"], i={"pipLibraries": [*TEN_NAMES, "yard-extra"]})
        results["raw_eleven"].append(await asyncio.to_thread(raw.once, [*TEN_NAMES, "yard-extra"]))
        results["add_one"].append(await timed_build(client, follower, env["id"]))
        results["revert"].append(await timed_revert(client, follower, env["id"], 1))
    return results


async def log_latency(client: Client, app: Any, builds: int) -> list[float]:
    """Per line: receive time at the subscriber minus append time in the server."""
    runtime = app.state.runtime
    written: dict[tuple[str, int], float] = {}
    original = runtime.logbus.append

    async def stamped(key: str, text: str) -> int:
        number: int = await original(key, text)
        written[(key, number)] = time.perf_counter()
        return number

    runtime.logbus.append = stamped
    latencies: list[float] = []
    sub = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }"
    try:
        for i in range(builds):
            env = await create(client, pipLibraries=["yard-alpha", f"yard-pkg{i % 10}"])
            version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
            key = f"{version['id']}:1"
            async with client.subscription(sub, v=version["id"]) as messages:
                joined = time.perf_counter()  # the subscription is asked for
                async for payload in messages:
                    received = time.perf_counter()
                    number = payload["data"]["buildLog"]["number"]
                    sent = written.get((key, number), 0.0)
                    # a line written before the subscriber asked is a late joiner's replay
                    if sent >= joined:
                        latencies.append(received - sent)
            await wait_built(client, env["id"])
    finally:
        runtime.logbus.append = original
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))  # the ratios vary round to round
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_index(work / "index", CATALOGUE)
        with serve_index(work / "index") as index_url:
            settings = Settings.from_env(
                {"ENVYARD_DATA_DIR": str(work / "data"), "ENVYARD_INDEX_URL": index_url}
            )

            async def make_user() -> str:
                async with database(settings):
                    return (await add_user("bench", "bench", admin=True))[1]

            token = await make_user()
            env = base_env(settings.data_dir, settings.database_url, index_url)
            # the interpreter of the builds' Python 3.11, found as the server finds it
            python = (await discover_pythons(settings.pythons))["3.11"]
            (work / "raw").mkdir()
            raw = RawUv(index_url, settings.cache_dir / "uv", work / "raw", python)
            with run_server(env) as serving:
                client = Client(serving.http_url, serving.ws_url, token)
                try:
                    results = await builds(client, raw, rounds)
                finally:
                    await client.aclose()
            # the latency needs the server's log bus: a server in this process
            port = free_port()
            server, app = start_server(settings, port)
            client = Client(
                f"http://127.0.0.1:{port}/graphql", f"ws://127.0.0.1:{port}/graphql", token
            )
            try:
                latencies = await log_latency(client, app, builds=30)
            finally:
                await client.aclose()
                server.should_exit = True
            baseline = await asyncio.to_thread(pip_baseline, index_url, work)
    print(f"envyard standalone benchmark ({rounds} rounds, median [min-max], seconds)")
    for name, label, target in [
        ("ten", "build, 10 packages, warm cache", 2.0),
        ("add_one", "next version adding 1 package", 1.0),
        ("revert", "revert to version 1", 1.0),
    ]:
        values = results[name]
        print(
            f"  {label:34s} {statistics.median(values):6.3f} "
            f"[{min(values):.3f}-{max(values):.3f}]  target < {target:g}"
        )
    ten = statistics.median(results["ten"])
    print(f"  {'baseline: python -m venv + pip':34s} {baseline:6.3f}  (best of 3, warm pip cache)")
    print(f"  ratio pip / envyard (10 packages)  {baseline / ten:6.1f}x")
    for name, label in [("raw_ten", "10 packages"), ("raw_eleven", "the next version's 11")]:
        values = results[name]
        print(
            f"  {'raw uv venv + uv pip install':34s} {statistics.median(values):6.3f} "
            f"[{min(values):.3f}-{max(values):.3f}]  {label}, before each build"
        )
    ratios = {
        build: [b / r for b, r in zip(results[build], results[raw_name], strict=True)]
        for build, raw_name in [("ten", "raw_ten"), ("add_one", "raw_eleven")]
    }
    print(
        "  envyard / raw uv, median of the rounds' ratios: "
        + ", ".join(
            f"{label} x{statistics.median(ratios[k]):.2f} "
            f"[{min(ratios[k]):.2f}-{max(ratios[k]):.2f}]"
            for k, label in [("ten", "10 packages"), ("add_one", "next version")]
        )
        + f"  target < 1.3 (interpreter {python}, envyard's warm uv cache)"
    )
    ms = [v * 1000 for v in latencies]
    print(
        f"log line latency over WebSocket: {len(ms)} lines, p50 {pct(ms, 0.5):.2f} ms, "
        f"p99 {pct(ms, 0.99):.2f} ms, max {max(ms):.2f} ms  target p99 < 50 ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
