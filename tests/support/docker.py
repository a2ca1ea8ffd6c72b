"""Docker for the tests: is an engine here, and run a command in an image (host network)."""

from __future__ import annotations

import os

import aiodocker
import pytest

BASE_IMAGE = os.environ.get("ENVYARD_TEST_BASE_IMAGE", "envyard-test/bookworm-python:3.11")


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


async def run_in_image(image: str, *command: str) -> str:
    """The output of `command` in a fresh container of `image`; fails on a non-zero exit."""
    async with aiodocker.Docker() as docker:
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
