"""The build tools volume: filled once per engine, safely by racing workers, refilled when
removed, and never part of an image."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import pytest
from aiodocker.exceptions import DockerError
from aiodocker.volumes import DockerVolume

from app.builders.toolbox import TOOLS, TOOLS_MOUNT, Toolbox
from tests.support.docker import BASE_IMAGE, require_docker

LABELS = {"envyard.deployment": "toolbox-test", "envyard.role": "tools"}


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    await require_docker()
    async with aiodocker.Docker() as client:
        yield client


async def build_container(docker: aiodocker.Docker, toolbox: Toolbox, *command: str) -> Any:
    return await docker.containers.create(
        {
            "Image": BASE_IMAGE,
            "Cmd": list(command) or ["true"],
            "HostConfig": {
                "NetworkMode": "none",
                "Mounts": toolbox.mounts("envyard-cache-toolbox-test"),
            },
        }
    )


async def nothing() -> None:
    """The base image is on the engine already."""


async def output(container: Any) -> str:
    await container.start()
    status = (await container.wait())["StatusCode"]
    said = "".join(await container.log(stdout=True, stderr=True))
    assert status == 0, said
    return said


async def test_racing_workers_fill_the_volume_once_and_a_removed_one_is_refilled(
    docker: aiodocker.Docker,
) -> None:
    version = f"test-{uuid.uuid4().hex[:12]}"
    first, second = Toolbox(LABELS, version), Toolbox(LABELS, version)
    containers: list[Any] = []
    try:
        containers += [await build_container(docker, first), await build_container(docker, second)]
        # Two workers that both find the volume empty copy at the same time.
        await asyncio.gather(
            first.ensure(docker, BASE_IMAGE, containers[0], nothing),
            second.ensure(docker, BASE_IMAGE, containers[1], nothing),
        )
        probe = (
            "import os, subprocess, sys; sys.path.insert(0, '/mnt/tools/python'); "
            "import rattler; print(sorted(os.listdir('/mnt')), sorted(os.listdir('/mnt/tools')), "
            "open('/mnt/tools/VERSION').read(), "
            "subprocess.run(['/mnt/tools/uv', '--version'], capture_output=True, text=True)"
            ".stdout.split()[0])"
        )
        check = await build_container(docker, first, "python3", "-c", probe)
        containers.append(check)
        assert (await output(check)).strip() == (
            f"['tools'] ['VERSION', 'python', 'uv'] {version} uv"
        )
        # Read-only for builds.
        write = await build_container(docker, first, "touch", f"{TOOLS}/x")
        containers.append(write)
        await write.start()
        assert (await write.wait())["StatusCode"] != 0
        # No filler is left behind.
        left = await docker.containers.list(
            all=True, filters={"label": [f"{k}={v}" for k, v in LABELS.items()]}
        )
        assert left == []

        # The volume removed (docker volume prune, say): the next build fills it again.
        for container in containers:
            await container.delete(force=True)
        containers.clear()
        await (await docker.volumes.get(first.volume)).delete()
        again = await build_container(docker, first, "ls", TOOLS_MOUNT + "/tools")
        containers.append(again)
        await first.ensure(docker, BASE_IMAGE, again, nothing)
        assert (await output(again)).split() == ["VERSION", "python", "uv"]
    finally:
        for container in containers:
            await container.delete(force=True)
        with contextlib.suppress(DockerError):
            await (await docker.volumes.get(first.volume)).delete()


async def test_prune_removes_other_tool_versions_unless_in_use(docker: aiodocker.Docker) -> None:
    current = Toolbox(LABELS)  # this envyard's tools: the volume the other tests use
    old, busy = (f"envyard-tools-old-{uuid.uuid4().hex[:8]}" for _ in range(2))
    other = f"envyard-cache-{uuid.uuid4().hex[:8]}"
    for name in (current.volume, old, busy, other):
        await docker.volumes.create({"Name": name})
    user = await docker.containers.create(
        {
            "Image": BASE_IMAGE,
            "Cmd": ["true"],
            "HostConfig": {"Mounts": [{"Type": "volume", "Source": busy, "Target": "/mnt"}]},
        }
    )
    try:
        removed = await current.prune(docker)
        assert old in removed and busy not in removed and current.volume not in removed
        names = {v["Name"] for v in (await docker.volumes.list())["Volumes"] or []}
        assert {current.volume, busy, other} <= names and old not in names
    finally:
        await user.delete(force=True)
        for name in (busy, other):
            with contextlib.suppress(DockerError):
                await DockerVolume(docker, name).delete()
