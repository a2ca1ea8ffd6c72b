"""Docker workers on two hosts through a registry: every version is pushed and pinned by
digest; an engine pulls the previous version (or the base image) it lacks."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import aiodocker
import httpx
import pytest

from app.builders import BuildRequest, BuildResult, Built
from app.builders.docker import DockerBuilder
from app.settings import Settings
from tests.support.docker import ENGINE_2, REGISTRY, require_two_hosts, run_in_image

BASE = f"{REGISTRY}/envyard-test/bookworm-python:3.11"  # pushed there by docker-setup
PROBE = "import json, yard_alpha, yard_pkg1; print(json.dumps([yard_alpha.__version__, yard_pkg1.__version__]))"  # noqa: E501
SECRET = "s3cret-registry-password"


@pytest.fixture
async def engines() -> AsyncIterator[tuple[aiodocker.Docker, aiodocker.Docker]]:
    await require_two_hosts()
    async with aiodocker.Docker() as one, aiodocker.Docker(url=ENGINE_2) as two:
        yield one, two


def builder(index_url: str, path: str, host: str | None) -> DockerBuilder:
    env = {
        "ENVYARD_INDEX_URL": index_url,
        "ENVYARD_BUILDER": "docker",
        "ENVYARD_DOCKER_IMAGES": f"python:3.11={BASE}",
        "ENVYARD_QUEUE_NAME": f"registry-{path}",
        "ENVYARD_REGISTRY": f"{REGISTRY}/{path}",
        "ENVYARD_REGISTRY_USERNAME": "envyard",
        "ENVYARD_REGISTRY_PASSWORD": SECRET,
    }
    if host is not None:
        env["ENVYARD_DOCKER_HOST"] = host
    return DockerBuilder(Settings.from_env(env))


def request(number: int, pip: list[str], previous: BuildResult | None) -> BuildRequest:
    return BuildRequest(
        version_id=number,
        environment_id=1,
        organization="acme",
        short_name="reg",
        number=number,
        python_version="3.11",
        base_environment=None,
        pip_requirements=pip,
        conda_requirements=[],
        previous=Built(previous.location, previous.packages) if previous else None,
        attempt=1,
    )


async def test_versions_move_between_engines_through_the_registry(
    engines: tuple[aiodocker.Docker, aiodocker.Docker], index_url: str
) -> None:
    one, two = engines
    path = f"t{uuid.uuid4().hex[:8]}"
    a, b = builder(index_url, path, None), builder(index_url, path, ENGINE_2)
    lines: list[str] = []

    async def emit(line: str) -> None:
        lines.append(line)

    try:
        first = await a.build(request(1, ["yard-alpha==1.0"], None), emit)
        repo = f"{REGISTRY}/{path}/envyard/acme/reg"
        assert first.location.startswith(f"{repo}@sha256:"), first.location
        # Engine 2 has neither the base image nor version 1: it pulls version 1.
        mark = len(lines)
        second = await b.build(request(2, ["yard-pkg1"], first), emit)
        assert f"Pulling {first.location}: this Docker engine does not have it" in lines[mark:]
        assert second.location.startswith(f"{repo}@sha256:")
        assert second.location != first.location
        # Revert on engine 1: the same image as version 1, under tag 3, by digest.
        third = await a.revert(request(3, [], second), Built(first.location, first.packages), emit)
        assert third.location == first.location
        # What activation hands out runs anywhere: here on engine 2, pulled by digest.
        found = json.loads(await run_in_image(second.location, "python", "-c", PROBE, url=ENGINE_2))
        assert found == ["1.0", "1.0"]
        async with httpx.AsyncClient() as client:
            listed = await client.get(f"http://{REGISTRY}/v2/{path}/envyard/acme/reg/tags/list")
        tags = listed.json()
        assert sorted(tags["tags"]) == ["1", "2", "3"]
        assert not any(SECRET in line for line in lines)
    finally:
        await a.aclose()
        await b.aclose()
        for engine in (one, two):
            await remove_images(engine, f"{REGISTRY}/{path}/")


async def remove_images(engine: aiodocker.Docker, prefix: str) -> None:
    """Remove the images named under `prefix`, children before their parents (a version's
    image is built on the previous version's; images made within one second are listed in
    no particular order)."""
    for _ in range(10):
        left = [
            image
            for image in await engine.images.list()
            if any(
                ref.startswith(prefix)
                for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
            )
        ]
        if not left:
            return
        for image in left:
            try:
                await engine.images.delete(image["Id"], force=True)
            except aiodocker.DockerError as exc:
                # 409: a child of it is still there, removed first; 404: it went with one
                if exc.status not in (404, 409):
                    raise
    raise AssertionError(f"images under {prefix} could not be removed")
