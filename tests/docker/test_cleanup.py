"""The Docker builder's own cleanup, against the real engine: a cancelled build removes its
container however often it is cancelled, and `reconcile` removes exactly the build
containers of its deployment whose attempt is no longer building."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import aiodocker
import pytest
from aiodocker.containers import DockerContainer

from app.builders import BuildRequest
from app.builders import docker as docker_builder
from app.builders.docker import DockerBuilder
from app.settings import Settings
from tests.support.docker import BASE_IMAGE, require_docker


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    await require_docker()
    async with aiodocker.Docker() as client:
        yield client


@pytest.fixture
async def deployment(docker: aiodocker.Docker) -> AsyncIterator[Callable[[], str]]:
    """Makes deployment names; what a failing test left under them is removed afterwards."""
    names: list[str] = []

    def new() -> str:
        names.append(f"envyard-test-{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield new
    for name in names:
        for container in await listed(docker, name):
            await container.delete(force=True)


async def listed(docker: aiodocker.Docker, deployment: str) -> list[DockerContainer]:
    labels = [f"envyard.deployment={deployment}"]
    return await docker.containers.list(all=True, filters={"label": labels})


def builder_for(index_url: str, deployment: str) -> DockerBuilder:
    return DockerBuilder(
        Settings.from_env(
            {
                "ENVYARD_INDEX_URL": index_url,
                "ENVYARD_BUILDER": "docker",
                "ENVYARD_DOCKER_IMAGES": f"python:3.11={BASE_IMAGE}",
                "ENVYARD_QUEUE_NAME": deployment,
            }
        )
    )


async def test_cancelled_over_and_over_the_build_still_removes_its_container(
    docker: aiodocker.Docker, deployment: Callable[[], str], index_url: str
) -> None:
    ours = deployment()
    builder = builder_for(index_url, ours)
    installing = asyncio.Event()

    async def emit(line: str) -> None:
        if line.startswith("Resolving"):
            installing.set()

    request = BuildRequest(
        version_id=1,
        environment_id=1,
        organization="acme",
        short_name="slow",
        number=1,
        python_version="3.11",
        base_environment=None,
        pip_requirements=["yard-slow"],
        conda_requirements=[],
        attempt=1,
    )
    build = asyncio.create_task(builder.build(request, emit))
    await asyncio.wait_for(installing.wait(), 60)  # uv resolves; its log is being streamed
    assert len(await listed(docker, ours)) == 1
    # A job abort can land on top of the heartbeat's cancel, while the container is removed.
    while not build.done():
        build.cancel()
        await asyncio.sleep(0)
    await builder.aclose()  # waits for a removal that outlived the build's task
    assert await listed(docker, ours) == []


async def test_reconcile_removes_what_stopped_builds_left(
    docker: aiodocker.Docker,
    deployment: Callable[[], str],
    index_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ours, theirs = deployment(), deployment()
    for name, version, attempt in [
        (ours, "1", "1"),  # its worker was killed: attempt 1 is no longer building
        (ours, "1", "2"),  # the attempt building now
        (ours, "2", ""),  # attempt not known: kept while any attempt of 2 builds
        (ours, "3", None),  # no attempt label: the same
        (theirs, "1", "1"),  # another deployment on the engine, the same version id
    ]:
        labels = {"envyard.deployment": name, "envyard.role": "build", "envyard.version": version}
        if attempt is not None:
            labels["envyard.attempt"] = attempt
        await docker.containers.create({"Image": BASE_IMAGE, "Cmd": ["true"], "Labels": labels})
    building = {(1, 2), (2, None)}

    async def is_building(version_id: int, attempt: int | None) -> bool:
        return (version_id, attempt) in building

    builder = builder_for(index_url, ours)
    try:
        with caplog.at_level(logging.INFO, logger="app.builders.docker"):
            assert await builder.reconcile(is_building) == 2
            assert await builder.reconcile(is_building) == 0
    finally:
        await builder.aclose()
    assert len([r for r in caplog.records if "removed build container" in r.message]) == 2
    left = [c["Labels"] for c in await listed(docker, ours)]
    assert sorted((c["envyard.version"], c.get("envyard.attempt")) for c in left) == [
        ("1", "2"),
        ("2", ""),
    ]
    assert len(await listed(docker, theirs)) == 1


async def test_reconcile_removes_tools_fillers_of_killed_workers(
    docker: aiodocker.Docker,
    deployment: Callable[[], str],
    index_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = deployment()
    labels = {"envyard.deployment": ours, "envyard.role": "tools"}
    await docker.containers.create({"Image": BASE_IMAGE, "Cmd": ["true"], "Labels": labels})

    async def is_building(version_id: int, attempt: int | None) -> bool:
        return False

    builder = builder_for(index_url, ours)
    try:
        assert await builder.reconcile(is_building) == 0  # a filler may still be copying
        assert len(await listed(docker, ours)) == 1
        monkeypatch.setattr(docker_builder, "STALE_FILLER_SECONDS", -5)  # now it is old
        assert await builder.reconcile(is_building) == 1
    finally:
        await builder.aclose()
    assert await listed(docker, ours) == []
