"""Distributed benchmarks: Docker builds, revert, and log fan-out to 200 WebSocket subscribers.

Run: .venv/bin/python bench/distributed.py   (needs scripts/docker-setup; prints figures)

A real deployment: `envyard serve` and one `envyard worker` process, PostgreSQL, Redis,
Docker, a local package index on 127.0.0.1.

- next version: an environment of 10 packages is built, then the next version adds one
  package (timed from buildEnvironment to the end of its buildLog subscription), against a
  `docker build --no-cache` from the base image installing the whole set of 11, same run;
- revert in Docker mode: revertEnvironment to the end of its log;
- fan-out: 200 graphql-transport-ws subscribers on one build; each line's latency is its
  arrival time minus the time Redis stored it (the stream entry id, in milliseconds). The
  plain document takes envyard's direct path (app/graphql/log_stream.py); the baseline, same
  run, asks for the same fields with `@include(if: true)`, which Strawberry executes per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.client import Client, collect_log  # noqa: E402
from tests.support.docker import BASE_IMAGE  # noqa: E402
from tests.support.index import CATALOGUE, TEN, serve_index, write_index  # noqa: E402
from tests.support.ops import BUILD, REVERT, UPDATE, create, wait_built  # noqa: E402
from tests.support.server import (  # noqa: E402
    base_env,
    database_url,
    distributed_env,
    run_server,
    start_worker,
    stop_process,
)

NAMES = [d.name for d in TEN]
SUBSCRIBERS = int(os.environ.get("BENCH_SUBSCRIBERS", "200"))
CLIENT_PROCESSES = int(os.environ.get("BENCH_CLIENT_PROCESSES", "1"))
API_PROCESSES = int(os.environ.get("BENCH_API_PROCESSES", "1"))
SUBSCRIPTION = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }"
STRAWBERRY = SUBSCRIPTION.replace("number", "number @include(if: true)")


async def timed(client: Client, mutation: str, env_id: str, **variables: object) -> float:
    start = time.perf_counter()
    data = await client(mutation, id=env_id, **variables)
    version = next(iter(data.values()))
    await collect_log(client, version["id"], timeout=600)
    elapsed = time.perf_counter() - start
    env = await wait_built(client, env_id)
    assert env["status"] == "DRAFT", env["versions"][-1]["log"]
    return elapsed


def docker_build_baseline(index_url: str, packages: list[str]) -> float:
    """`docker build --no-cache` from the base image installing every package at once."""
    dockerfile = (
        f"FROM {BASE_IMAGE}\n"
        "RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir "
        f"--disable-pip-version-check --index-url {index_url} {' '.join(packages)}\n"
    ).encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    command = ["docker", "build", "--network", "host", "--no-cache", "-q", "-t", "bench:x", "-"]
    start = time.perf_counter()
    subprocess.run(
        command,
        input=context.getvalue(),
        check=True,
        capture_output=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    return time.perf_counter() - start


async def fan_out(
    client: Client, redis_url: str, namespace: str, document: str, apis: list[tuple[str, str]]
) -> tuple[list[float], list[float], float]:
    """(live latencies, replay latencies, seconds for all subscribers to join).

    yard-slow's index page answers after 3 s, so the build pauses early on: the subscribers
    join during the pause. A line stored after the last one joined is a live delivery; lines
    stored before are replayed to late joiners and reported apart.
    """
    env = await create(client, pipLibraries=["yard-slow", "yard-beta", "yard-gamma[fast]"])
    version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
    started = time.time()
    # Subscribers are spread over the API processes, and for each over client processes as
    # browsers would be (one Python process decoding 200 sockets adds its own queue).
    parts_count = CLIENT_PROCESSES * len(apis)
    shares = [
        (apis[i % len(apis)], SUBSCRIBERS // parts_count + (i < SUBSCRIBERS % parts_count))
        for i in range(parts_count)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(parts_count, mp_context=get_context("spawn")) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    subscribe_many,
                    http_url,
                    ws_url,
                    client.token,
                    version["id"],
                    share,
                    document,
                )
                for (http_url, ws_url), share in shares
            )
        )
    arrivals = [per for part in parts for per in part]
    redis = Redis.from_url(redis_url, decode_responses=True)
    entries = await redis.xrange(f"{namespace}:log:{version['id']}:1")
    await redis.aclose()
    stored = {int(f["n"]): int(i.split("-")[0]) / 1000 for i, f in entries if "n" in f}
    assert all([n for n, _ in a] == sorted(stored) for a in arrivals), "lines missed or repeated"
    all_joined = max(a[0][1] for a in arrivals)
    live, replay = [], []
    for per in arrivals:
        for n, arrived in per:
            (live if stored[n] > all_joined else replay).append(arrived - stored[n])
    return live, replay, all_joined - started


def subscribe_many(
    http_url: str, ws_url: str, token: str | None, version_id: str, count: int, document: str
) -> list[list[tuple[int, float]]]:
    """In a client process: `count` subscribers; each line's number and arrival time."""

    async def run() -> list[list[tuple[int, float]]]:
        client = Client(http_url, ws_url, token)
        arrivals: list[list[tuple[int, float]]] = [[] for _ in range(count)]

        async def subscriber(i: int) -> None:
            async with client.subscription(document, v=version_id) as messages:
                async for payload in messages:
                    arrivals[i].append((payload["data"]["buildLog"]["number"], time.time()))

        await asyncio.gather(*(subscriber(i) for i in range(count)))
        await client.aclose()
        return arrivals

    return asyncio.run(run())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_index(work / "index", CATALOGUE)
        with serve_index(work / "index") as index_url:
            for db in database_url("postgres", work):
                env = distributed_env(base_env(work / "data", db, index_url), BASE_IMAGE)
                env["ENVYARD_LOG_RETENTION"] = "120"
                with run_server(env) as api, contextlib.ExitStack() as more:
                    peers = [more.enter_context(run_server(env)) for _ in range(API_PROCESSES - 1)]
                    worker = start_worker(env)
                    client = Client(api.http_url, api.ws_url, api.add_user("bench", "bench"))
                    try:
                        first, add_one, revert = [], [], []
                        for _ in range(rounds):
                            e = await create(client, pipLibraries=NAMES)
                            first.append(await timed(client, BUILD, e["id"]))
                            await client(
                                UPDATE, id=e["id"], i={"pipLibraries": [*NAMES, "yard-extra"]}
                            )
                            add_one.append(await timed(client, BUILD, e["id"]))
                            revert.append(await timed(client, REVERT, e["id"], v=1))
                        fan_outs = {
                            label: await fan_out(
                                client,
                                env["ENVYARD_REDIS_URL"],
                                env["ENVYARD_QUEUE_NAME"],
                                document,
                                [(s.http_url, s.ws_url) for s in (api, *peers)],
                            )
                            for label, document in (
                                ("envyard", SUBSCRIPTION),
                                ("baseline, Strawberry per event", STRAWBERRY),
                            )
                        }
                    finally:
                        await client.aclose()
                        stop_process(worker)
            baseline = [
                await asyncio.to_thread(docker_build_baseline, index_url, [*NAMES, "yard-extra"])
                for _ in range(rounds)
            ]

    def line(label: str, values: list[float], target: str = "") -> None:
        print(
            f"  {label:44s} {statistics.median(values):6.2f} "
            f"[{min(values):.2f}-{max(values):.2f}] {target}"
        )

    print(f"envyard distributed benchmark, Docker builder ({rounds} rounds, median [min-max], s)")
    line("version 1: 10 packages from the base image", first, "target < 5")
    line("next version adding 1 package", add_one, "target < 1.5")
    line("revert", revert, "target < 1")
    line("baseline: docker build --no-cache, 11 packages", baseline)
    ratio = statistics.median(baseline) / statistics.median(add_one)
    print(f"  {'ratio baseline / next version':44s} {ratio:6.1f}x")
    for label, (live, replay, joining) in fan_outs.items():
        ms = [v * 1000 for v in live]
        if not ms:
            print(
                f"log fan-out ({label}): no live deliveries, the build's lines were all stored "
                f"before the {SUBSCRIBERS} subscribers had joined ({joining:.2f} s): see "
                "bench/fanout.py for live fan-out at a set line rate"
            )
            continue
        print(
            f"log fan-out ({label}), {SUBSCRIBERS} subscribers on {API_PROCESSES} API "
            f"process(es), {CLIENT_PROCESSES * API_PROCESSES} client process(es), joined within "
            f"{joining:.2f} s: {len(ms)} live line deliveries, p50 {pct(ms, 0.5):.1f} ms, "
            f"p99 {pct(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"
        )
        if replay:
            rs = [v * 1000 for v in replay]
            print(
                f"  replayed to late joiners: {len(rs)} deliveries, p50 {pct(rs, 0.5):.0f} ms "
                "after the line was stored (includes the time to join)"
            )
    print("  (target: p99 < 100 ms with envyard's path; Redis ids have 1 ms resolution)")


if __name__ == "__main__":
    asyncio.run(main())
