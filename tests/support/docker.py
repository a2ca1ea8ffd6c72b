"""Docker for the tests: is an engine here, and run a command in an image (host network)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import aiodocker
import httpx
import pytest

BASE_IMAGE = os.environ.get("ENVYARD_TEST_BASE_IMAGE", "envyard-test/bookworm-python:3.11")
# The second engine (another host) and the registry that scripts/docker-setup starts.
ENGINE_2 = os.environ.get("ENVYARD_TEST_DOCKER2", "unix:///run/envyard-docker2.sock")
REGISTRY = os.environ.get("ENVYARD_TEST_REGISTRY", "127.0.0.1:5000")


async def require_docker() -> None:
    """Docker tests skip outside CI when no engine runs; in CI a missing engine fails."""
    try:
        async with aiodocker.Docker() as docker:
            await docker.images.inspect(BASE_IMAGE)
    except Exception as exc:
        message = f"Docker engine or {BASE_IMAGE} unavailable ({exc}); run scripts/docker-setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


async def require_two_hosts() -> None:
    """The second engine and the registry: skipped outside CI when missing, failed in CI."""
    await require_docker()
    try:
        async with aiodocker.Docker(url=ENGINE_2) as docker:
            await docker.version()
        async with httpx.AsyncClient(timeout=5) as client:
            (await client.get(f"http://{REGISTRY}/v2/")).raise_for_status()
    except Exception as exc:
        message = f"second Docker engine or registry unavailable ({exc}); run scripts/docker-setup"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def in_thread(check: Callable[[], Awaitable[None]]) -> None:
    """Run `check` (require_docker, require_two_hosts) from a synchronous fixture."""

    async def run() -> None:
        await check()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


async def run_in_image(image: str, *command: str, url: str | None = None) -> str:
    """The output of `command` in a fresh container of `image` on the engine at `url` (the
    default one if None), pulled first if that engine lacks it; fails on a non-zero exit."""
    async with aiodocker.Docker(url=url) as docker:
        try:
            await docker.images.inspect(image)
        except aiodocker.DockerError:
            await docker.images.pull(image)
        container = await docker.containers.create(
            {"Image": image, "Cmd": list(command), "HostConfig": {"NetworkMode": "host"}}
        )
        try:
            await container.start()
            status = (await container.wait())["StatusCode"]
            output = "".join(await container.log(stdout=True, stderr=True))
        finally:
            await container.delete(force=True)
    assert status == 0, output
    return output
