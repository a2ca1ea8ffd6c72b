"""Standalone benchmarks: build times through the API, and log line latency over WebSocket.

Run: .venv/bin/python bench/standalone.py   (prints figures; asserts nothing)

- builds: a 10-package environment from a warm cache, the next version adding one package,
  and a revert, each timed from the buildEnvironment/revertEnvironment mutation to the end of
  its buildLog subscription, by a client of an `envyard serve` process (a server in this
  process would share its interpreter, and its lock, with the client: 20-40 ms a build);
  against `uv venv` + `uv pip install` of the same 10 packages
  (and of the next version's 11) with envyard's warm uv cache, and `python -m venv` + `pip
  install` with pip's cache warm, from the same local index, timed in the same run.
- log latency: the time from the builder writing a line (the log bus append, in the server)
  to a graphql-transport-ws subscriber receiving it, over many real builds.
"""

from __future__ import annotations

import asyncio
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
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.main import create_app  # noqa: E402
from app.services.runtime import database  # noqa: E402
from app.services.users import add_user  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.support.client import Client, collect_log  # noqa: E402
from tests.support.index import CATALOGUE, TEN, serve_index, write_index  # noqa: E402
from tests.support.ops import BUILD, REVERT, UPDATE, create, wait_built  # noqa: E402
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


async def timed_build(client: Client, env_id: str) -> float:
    start = time.perf_counter()
    version = (await client(BUILD, id=env_id))["buildEnvironment"]
    await collect_log(client, version["id"])
    elapsed = time.perf_counter() - start
    env = await wait_built(client, env_id)
    assert env["status"] == "DRAFT", env
    return elapsed


async def timed_revert(client: Client, env_id: str, number: int) -> float:
    start = time.perf_counter()
    version = (await client(REVERT, id=env_id, v=number))["revertEnvironment"]
    await collect_log(client, version["id"])
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


def uv_baseline(index_url: str, cache: Path, work: Path, names: list[str]) -> float:
    """`uv venv` + `uv pip install` of `names` from the same index, with envyard's own uv
    cache (warm from its builds): the least any uv-based build can take. Median of 5."""
    uv = find_uv_bin()
    env = {"PATH": os.environ["PATH"], "HOME": str(work), "UV_CACHE_DIR": str(cache)}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    index = ["--index-url", index_url]

    def once(target: Path) -> float:
        start = time.perf_counter()
        subprocess.run(
            [uv, "venv", "-q", "--no-project", "--python", sys.executable, str(target)],
            check=True,
            env=env,
            cwd=work,
        )
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                str(target / "bin" / "python"),
                *index,
                *names,
            ],
            check=True,
            env=env,
            cwd=work,
        )
        return time.perf_counter() - start

    tag = len(names)
    once(work / f"uv-{tag}-warm")
    return statistics.median(once(work / f"uv-{tag}-{i}") for i in range(5))


async def builds(client: Client, rounds: int) -> dict[str, list[float]]:
    warm = await create(client, pipLibraries=TEN_NAMES)
    await timed_build(client, warm["id"])  # fills uv's cache
    results: dict[str, list[float]] = {"ten": [], "add_one": [], "revert": []}
    for _ in range(rounds):
        env = await create(client, pipLibraries=TEN_NAMES)
        results["ten"].append(await timed_build(client, env["id"]))
        await client(UPDATE, id=env["id"], i={"pipLibraries": [*TEN_NAMES, "yard-extra"]})
        results["add_one"].append(await timed_build(client, env["id"]))
        results["revert"].append(await timed_revert(client, env["id"], 1))
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
                async for payload in messages:
                    received = time.perf_counter()
                    number = payload["data"]["buildLog"]["number"]
                    sent = written.get((key, number))
                    if sent is not None:  # lines replayed from before we joined have no stamp
                        latencies.append(received - sent)
            await wait_built(client, env["id"])
    finally:
        runtime.logbus.append = original
    return latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
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
            with run_server(env) as serving:
                client = Client(serving.http_url, serving.ws_url, token)
                try:
                    results = await builds(client, rounds)
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
            cache = settings.cache_dir / "uv"
            (work / "raw").mkdir()
            uv_ten = await asyncio.to_thread(uv_baseline, index_url, cache, work / "raw", TEN_NAMES)
            uv_eleven = await asyncio.to_thread(
                uv_baseline, index_url, cache, work / "raw", [*TEN_NAMES, "yard-extra"]
            )

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
    add_one = statistics.median(results["add_one"])
    print(f"  {'baseline: python -m venv + pip':34s} {baseline:6.3f}  (best of 3, warm pip cache)")
    print(f"  ratio pip / envyard (10 packages)  {baseline / ten:6.1f}x")
    print(
        f"  {'baseline: uv venv + uv pip install':34s} {uv_ten:6.3f}  10 packages, "
        f"{uv_eleven:.3f} the 11 of the next version (median of 5, envyard's warm uv cache)"
    )
    print(
        f"  envyard / raw uv: 10 packages x{ten / uv_ten:.2f}, next version "
        f"x{add_one / uv_eleven:.2f}  target < 1.3"
    )
    ms = [v * 1000 for v in latencies]
    print(
        f"log line latency over WebSocket: {len(ms)} lines, p50 {pct(ms, 0.5):.2f} ms, "
        f"p99 {pct(ms, 0.99):.2f} ms, max {max(ms):.2f} ms  target p99 < 50 ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
