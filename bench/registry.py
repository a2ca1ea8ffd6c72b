"""Docker workers on two hosts through a registry: the next version on the other host (pull
+ build + push) against the same build on the host that has the previous image.

Run: .venv/bin/python bench/registry.py   (prints figures; asserts nothing)

Needs scripts/docker-setup and scripts/docker-hosts (a second engine and a registry on
127.0.0.1:5000). Builders are driven directly (no API): version 1 on engine 1, then
version 2 (one package more) on engine 1 and, from the same version 1, on engine 2, whose
copy of version 1 is removed before each round so that it pulls it. Also the rebuild from
the base image (ENVYARD_MAX_IMAGE_LAYERS reached) against a normal next version, on engine 1.
BENCH_ROUNDS sets the rounds (default 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiodocker  # noqa: E402

from app.builders import BuildRequest, BuildResult, Built  # noqa: E402
from app.builders.docker import DockerBuilder  # noqa: E402
from app.settings import Settings  # noqa: E402
from tests.support.docker import ENGINE_2, REGISTRY  # noqa: E402
from tests.support.index import CATALOGUE, serve_index, write_index  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BASE = f"{REGISTRY}/envyard-test/bookworm-python:3.11"
PINS = [f"yard-pkg{i}==1.0" for i in range(5)]


def builder(index_url: str, path: str, host: str | None, layers: int = 64) -> DockerBuilder:
    env = {
        "ENVYARD_INDEX_URL": index_url,
        "ENVYARD_BUILDER": "docker",
        "ENVYARD_DOCKER_IMAGES": f"python:3.11={BASE}",
        "ENVYARD_QUEUE_NAME": f"bench-{path}",
        "ENVYARD_REGISTRY": f"{REGISTRY}/{path}",
        "ENVYARD_MAX_IMAGE_LAYERS": str(layers),
    }
    if host is not None:
        env["ENVYARD_DOCKER_HOST"] = host
    return DockerBuilder(Settings.from_env(env))


def request(short: str, number: int, pip: list[str], previous: BuildResult | None) -> BuildRequest:
    return BuildRequest(
        version_id=number,
        environment_id=1,
        organization="bench",
        short_name=short,
        number=number,
        python_version="3.11",
        base_environment=None,
        pip_requirements=pip,
        conda_requirements=[],
        previous=Built(previous.location, previous.packages) if previous else None,
        attempt=1,
    )


async def quiet(line: str) -> None:
    """Build logs are not the benchmark's business."""


async def timed(builder: DockerBuilder, req: BuildRequest) -> float:
    started = time.perf_counter()
    await builder.build(req, quiet)
    return time.perf_counter() - started


async def main() -> None:
    path = f"b{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as work:
        root = write_index(Path(work) / "index", CATALOGUE)
        with serve_index(root) as index_url:
            a, b = builder(index_url, path, None), builder(index_url, path, ENGINE_2)
            low = builder(index_url, path, None, layers=2)  # version 1 has 2 layers
            figures: dict[str, list[float]] = {"same": [], "other": [], "rebase": []}
            try:
                async with aiodocker.Docker(url=ENGINE_2) as two:
                    for round_ in range(ROUNDS + 1):
                        short = f"r{round_}"
                        first = await a.build(request(short, 1, PINS, None), quiet)
                        same = await timed(a, request(short, 2, ["yard-alpha"], first))
                        for image in (first.location,):
                            with contextlib.suppress(aiodocker.DockerError):
                                await two.images.delete(image, force=True)
                        other = await timed(b, request(short, 3, ["yard-alpha"], first))
                        rebase = await timed(low, request(short, 4, ["yard-alpha"], first))
                        if round_:  # the first round warms the caches of both engines
                            figures["same"].append(same)
                            figures["other"].append(other)
                            figures["rebase"].append(rebase)
            finally:
                for each in (a, b, low):
                    await each.aclose()

    def show(label: str, values: list[float]) -> None:
        print(
            f"{label:62s} median {statistics.median(values):6.2f} s  "
            f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
        )

    print("next version (+1 pip package on 5), Docker builder with a registry, warm caches")
    show("on the engine that has the previous image (build + push)", figures["same"])
    show("on the other engine (pull + build + push)", figures["other"])
    show("rebuilt from the base image (layer bound reached) + push", figures["rebase"])


if __name__ == "__main__":
    asyncio.run(main())
