"""No depth limit: an image that would pass ENVYARD_MAX_IMAGE_LAYERS is built from the base
image again with the previous version's packages, and the chain of versions goes on."""

from __future__ import annotations

import contextlib
import itertools
import json
import uuid
from collections.abc import AsyncIterator

import aiodocker
import pytest

from app.builders import BuildRequest, Built
from app.builders.docker import DockerBuilder
from app.domain.requirements import PackageManager
from app.settings import Settings
from tests.support.docker import BASE_IMAGE, require_docker, run_in_image

PROBE = "import json, importlib.metadata as m; print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"  # noqa: E501


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    await require_docker()
    async with aiodocker.Docker() as client:
        yield client


@pytest.mark.parametrize("conda", [False, True], ids=["venv", "conda"])
async def test_versions_past_the_layer_bound_build_from_the_base_again(
    docker: aiodocker.Docker, index_url: str, conda_channel_url: str, conda: bool
) -> None:
    short = f"d{uuid.uuid4().hex[:4]}"
    builder = DockerBuilder(
        Settings.from_env(
            {
                "ENVYARD_INDEX_URL": index_url,
                "ENVYARD_BUILDER": "docker",
                "ENVYARD_DOCKER_IMAGES": f"python:3.11={BASE_IMAGE}",
                "ENVYARD_CONDA_CHANNELS": conda_channel_url,
                "ENVYARD_QUEUE_NAME": f"depth-{short}",
                "ENVYARD_MAX_IMAGE_LAYERS": "3",
            }
        )
    )
    conda_libraries = ["yardc-alpha==1.0"] if conda else []
    requests = [["yard-alpha==1.0"], ["yard-pkg1"], ["yard-pkg2"], ["yard-pkg3"]]
    previous: Built | None = None
    layers, logs, results = [], [], []
    try:
        for number, pip in enumerate(requests, start=1):
            lines: list[str] = []

            async def emit(line: str) -> None:
                lines.append(line)  # noqa: B023 (each build has its own list)

            request = BuildRequest(
                version_id=number,
                environment_id=1,
                organization="acme",
                short_name=short,
                number=number,
                python_version="3.11",
                base_environment=None,
                pip_requirements=pip,  # only the new library: the others remain
                conda_requirements=conda_libraries,
                previous=previous,
                attempt=1,
            )
            result = await builder.build(request, emit)
            image = await docker.images.inspect(result.location)
            layers.append(len(image["RootFS"]["Layers"]))
            logs.append(lines)
            results.append(result)
            previous = Built(result.location, result.packages)
        installed = json.loads(await run_in_image(results[3].location, "python", "-c", PROBE))
        assert {"yard-alpha", "yard-pkg1", "yard-pkg2", "yard-pkg3"} <= set(installed)
    finally:
        await builder.aclose()
        for number in range(1, len(requests) + 1):
            with contextlib.suppress(aiodocker.DockerError):
                await docker.images.delete(f"envyard/acme/{short}:{number}", force=True)
    # The base image has 1 layer; version 3 would have had 4.
    assert layers == [2, 3, 2, 3]
    assert any("building version 3 from the base image again" in line for line in logs[2])
    assert not any("from the base image again" in line for line in logs[1] + logs[3])
    pip_names = [{p.name for p in r.packages if p.manager is PackageManager.PIP} for r in results]
    assert pip_names[3] >= {"yard-alpha", "yard-pkg1", "yard-pkg2", "yard-pkg3"}
    for before, after in itertools.pairwise(results):
        kept = {p.key: p.version for p in before.packages}
        now = {p.key: p.version for p in after.packages}
        assert {k: now.get(k) for k in kept} == kept  # every package of the previous version
    if conda:  # the previous image's conda records were kept in the solve from the base
        assert any(line.startswith("Keeping the 2 conda packages") for line in logs[2])
        assert any(p.name == "yardc-alpha" for p in results[2].packages)
