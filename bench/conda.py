"""Conda + pip builds through the API: standalone server, local builder and Docker builder.

Run: .venv/bin/python bench/conda.py   (prints figures; asserts nothing)
     BENCH_BUILDERS=local (or docker) for one builder only; the Docker builder needs an
     engine with the tests' base image (scripts/docker-setup).

With the tests' own conda channel and pip index on 127.0.0.1, and warm caches:
- version 2 of a conda + pip environment, adding one conda package and one pip package on
  top of version 1 (timed from buildEnvironment to the end of the log subscription);
- the same set built from scratch as version 1 of a new environment, in the same run;
- revert to version 1.
BENCH_ROUNDS sets the rounds (default 3).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.client import Client, collect_log  # noqa: E402
from tests.support.conda import build_channel, serve_channel  # noqa: E402
from tests.support.docker import BASE_IMAGE  # noqa: E402
from tests.support.index import CATALOGUE, serve_index, write_index  # noqa: E402
from tests.support.ops import BUILD, REVERT, UPDATE, create, wait_built  # noqa: E402
from tests.support.server import base_env, run_server  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BUILDERS = os.environ.get("BENCH_BUILDERS", "local docker").split()
V1 = {"condaLibraries": ["yardc-alpha==1.0"], "pipLibraries": ["yard-alpha==1.0"]}
V2 = {
    "condaLibraries": ["yardc-alpha==1.0", "yardc-tool"],
    "pipLibraries": ["yard-alpha==1.0", "yard-beta"],
}


async def timed(client: Client, mutation: str, **variables: object) -> float:
    started = time.perf_counter()
    name = "buildEnvironment" if mutation is BUILD else "revertEnvironment"
    version = (await client(mutation, **variables))[name]
    await collect_log(client, version["id"])
    elapsed = time.perf_counter() - started
    env = await wait_built(client, str(variables["id"]))
    assert env["status"] == "DRAFT", env["versions"][-1]["log"]
    return elapsed


async def measure(builder: str) -> dict[str, list[float]]:
    channel = build_channel()
    with tempfile.TemporaryDirectory() as work:
        root = write_index(Path(work) / "index", CATALOGUE)
        with serve_index(root) as index_url, serve_channel(channel) as channel_url:
            data = Path(work) / "data"
            env = base_env(data, f"sqlite://{data}/envyard.db", index_url, channel_url)
            if builder == "docker":
                env.update(
                    ENVYARD_BUILDER="docker", ENVYARD_DOCKER_IMAGES=f"python:3.11={BASE_IMAGE}"
                )
            with run_server(env) as server:
                client = Client(server.http_url, server.ws_url, server.admin_token)
                warm = await create(client, **V2)  # fills the package caches
                await timed(client, BUILD, id=warm["id"])
                figures: dict[str, list[float]] = {"next": [], "scratch": [], "revert": []}
                for _ in range(ROUNDS):
                    first = await create(client, **V1)
                    await timed(client, BUILD, id=first["id"])
                    await client(UPDATE, id=first["id"], i=V2)
                    figures["next"].append(await timed(client, BUILD, id=first["id"]))
                    fresh = await create(client, **V2)
                    figures["scratch"].append(await timed(client, BUILD, id=fresh["id"]))
                    figures["revert"].append(await timed(client, REVERT, id=first["id"], v=1))
                await client.aclose()
    return figures


def show(label: str, values: list[float]) -> None:
    print(
        f"{label:48s} median {statistics.median(values):6.2f} s  "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


async def main() -> None:
    for builder in BUILDERS:
        figures = await measure(builder)
        print(f"conda + pip, standalone server, {builder} builder, warm caches")
        show("version 2 (+1 conda, +1 pip package) on top of 1", figures["next"])
        show("the same set from scratch (a new environment)", figures["scratch"])
        show("revert to version 1", figures["revert"])


if __name__ == "__main__":
    asyncio.run(main())
