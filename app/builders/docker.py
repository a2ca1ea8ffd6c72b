"""Docker builder: one image per version, through aiodocker only.

Version 1 starts from the base environment's image, version N+1 from version N's image, so
the seed's rules hold (libraries removed from the request may remain). Each build runs one
container from the starting image with host networking: a fixed driver script (ours) creates
the venv if needed and pip-installs a requirements file (the user's libraries, as data, in a
tar put into the container), then records the installed packages. On success the container
is committed as `envyard/<organization>/<short name>:<version>`; on failure or cancellation
it is removed and nothing is tagged. Nothing the user typed reaches a shell or a Dockerfile.

Build containers are labelled with their deployment (ENVYARD_QUEUE_NAME: deployments may
share an engine, and their version ids collide), version, attempt and worker. A worker
killed mid-build cannot remove its container; `reconcile`, which every worker runs at start
and periodically, removes the build containers whose attempt the database no longer has
BUILDING.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import tarfile
from collections import deque
from pathlib import Path
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from app.builders import BuildFailed, BuildRequest, BuildResult, Built, Emit, IsBuilding
from app.builders.output import LineSplitter, count, explain_failure, relay, tail
from app.domain.environments import BaseEnvironment
from app.domain.requirements import PackageManager
from app.domain.versions import Package
from app.settings import Settings

log = logging.getLogger(__name__)

VENV = "/opt/envyard/venv"
WORK = "/envyard"

DEPLOYMENT = "envyard.deployment"
VERSION = "envyard.version"
ATTEMPT = "envyard.attempt"
WORKER = "envyard.worker"
ROLE = "envyard.role"

# Runs inside the build container with the image's own python3. Constant: no user input.
DRIVER = f"""\
import json, os, subprocess, sys
venv = {VENV!r}
python = os.path.join(venv, "bin", "python")
if not os.path.exists(python):
    print("Creating the environment at " + venv, flush=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
if os.path.getsize({WORK!r} + "/requirements.txt"):
    print("Installing the requested pip libraries", flush=True)
    code = subprocess.run([python, "-m", "pip", "install", "--no-input", "--progress-bar",
                           "off", "-r", {WORK!r} + "/requirements.txt"]).returncode
    if code:
        sys.exit(code)
listing = subprocess.run(
    [python, "-c", "import json, importlib.metadata as m; print(json.dumps(sorted("
     "[d.metadata['Name'], d.version] for d in m.distributions())))"],
    check=True, capture_output=True, text=True).stdout
with open({WORK!r} + "/installed.json", "w") as out:
    out.write(listing)
if os.path.exists({WORK!r} + "/ca.pem"):
    os.remove({WORK!r} + "/ca.pem")
count = len(json.loads(listing))
print("Recorded %d installed package%s" % (count, "" if count == 1 else "s"), flush=True)
"""


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo(WORK.strip("/"))
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{WORK.strip('/')}/{name}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class DockerBuilder:
    kind = "docker"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._images = dict(settings.docker_images)
        self._docker: aiodocker.Docker | None = None
        self._removals: set[asyncio.Task[bool]] = set()

    def _client(self) -> aiodocker.Docker:
        # Lazily: API processes describe base environments without a Docker socket.
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._settings.docker_host)
        return self._docker

    async def aclose(self) -> None:
        # Removals that outlived a cancelled build need the client: let them finish first.
        await asyncio.gather(*self._removals, return_exceptions=True)
        if self._docker is not None:
            await self._docker.close()
            self._docker = None

    async def base_environments(self) -> list[BaseEnvironment]:
        return [BaseEnvironment(name, name.split(":", 1)[1]) for name in self._images]

    def _base_image(self, request: BuildRequest) -> str:
        name = request.base_environment or f"python:{request.python_version}"
        image = self._images.get(name)
        if image is None:
            raise BuildFailed(f"No Docker image is configured for {name} (ENVYARD_DOCKER_IMAGES).")
        return image

    @staticmethod
    def _reference(request: BuildRequest) -> tuple[str, str]:
        return f"envyard/{request.organization}/{request.short_name}", str(request.number)

    async def build(self, request: BuildRequest, emit: Emit) -> BuildResult:
        if request.conda_requirements:
            raise BuildFailed(
                "Conda libraries cannot be installed yet: conda installs are not yet available "
                f"with the Docker builder ({', '.join(request.conda_requirements)})."
            )
        docker = self._client()
        start = request.previous.location if request.previous else self._base_image(request)
        await self._require_image(start)
        repo, tag = self._reference(request)
        await emit(f"Starting from image {start}")
        files = {
            "build.py": DRIVER.encode(),
            "requirements.txt": "".join(f"{r}\n" for r in request.pip_requirements).encode(),
        }
        env = [
            "PYTHONUNBUFFERED=1",
            "PIP_DISABLE_PIP_VERSION_CHECK=1",
            "PIP_NO_CACHE_DIR=1",
            "PIP_ROOT_USER_ACTION=ignore",
        ]
        if self._settings.index_url:
            env.append(f"PIP_INDEX_URL={self._settings.index_url}")
        if self._settings.extra_index_urls:
            env.append(f"PIP_EXTRA_INDEX_URL={' '.join(self._settings.extra_index_urls)}")
        if self._settings.ca_bundle:
            files["ca.pem"] = await asyncio.to_thread(Path(self._settings.ca_bundle).read_bytes)
            env.append(f"PIP_CERT={WORK}/ca.pem")
        config: dict[str, Any] = {
            "Image": start,
            "Cmd": ["python3", f"{WORK}/build.py"],
            "Env": env,
            "User": "root",
            "WorkingDir": "/",
            "Labels": self._labels(request),
            "HostConfig": {"NetworkMode": "host"},
        }
        try:
            container = await docker.containers.create(config)
        except DockerError as exc:
            raise BuildFailed(
                f"Docker could not create the build container: {exc.message}"
            ) from None
        try:
            await container.put_archive("/", _tar(files))
            await container.start()
            last = await self._stream(container, emit)
            status = (await container.wait()).get("StatusCode", 1)
            if status != 0:
                cause = explain_failure(
                    list(last), f"the package index {self._settings.index_url or 'PyPI'}"
                )
                if cause is None:
                    raise BuildFailed(
                        f"pip install failed (exit code {status}); see the lines above."
                    )
                raise BuildFailed(f"pip install failed: {cause}.")
            packages = await self._read_installed(container)
            committed = await container.commit(
                repository=repo,
                tag=tag,
                message=f"envyard version {request.number} of {request.short_name}",
                config={
                    "Env": [
                        f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                        "/usr/bin:/sbin:/bin",
                        f"VIRTUAL_ENV={VENV}",
                        "LANG=C.UTF-8",
                    ],
                    "Cmd": ["python"],
                    # The image inherits the container's labels (a commit merges them);
                    # containers run from it must not look like build containers.
                    "Labels": {ROLE: "image"},
                },
            )
            await emit(
                f"Image {repo}:{tag} ({committed.get('Id', '')[:19]}) holds "
                f"{count(len(packages), 'package')}"
            )
            return BuildResult(location=f"{repo}:{tag}", packages=packages)
        finally:
            await self._remove(container)

    def _labels(self, request: BuildRequest) -> dict[str, str]:
        return {
            DEPLOYMENT: self._settings.queue_name,
            VERSION: str(request.version_id),
            # Always set: a container also gets the labels of its image (the previous
            # version's, committed from a build container). Empty: not known.
            ATTEMPT: "" if request.attempt is None else str(request.attempt),
            WORKER: f"{socket.gethostname()}:{os.getpid()}",
            ROLE: "build",
        }

    async def _remove(self, container: Any) -> None:
        """Remove a build container, also when the build is being cancelled.

        Cancelled again while removing (a job abort on top of the heartbeat's cancel), the
        removal goes on in its own task; aclose waits for it.
        """
        removal = asyncio.create_task(self._delete(container))
        self._removals.add(removal)
        removal.add_done_callback(self._removals.discard)
        await asyncio.shield(removal)

    @staticmethod
    async def _delete(container: Any) -> bool:
        """Force-remove a container; False when it was gone or another removal won."""
        try:
            await container.delete(force=True)
        except DockerError as exc:
            if exc.status not in (404, 409):  # 409: removal already in progress elsewhere
                log.warning("could not remove build container %s: %s", container.id, exc)
            return False
        return True

    async def reconcile(self, is_building: IsBuilding) -> int:
        """Remove this deployment's build containers whose attempt is no longer building."""
        containers = await self._client().containers.list(
            all=True,
            filters={"label": [f"{DEPLOYMENT}={self._settings.queue_name}", f"{ROLE}=build"]},
        )
        removed = 0
        for container in containers:
            labels = container["Labels"] or {}
            try:
                version_id = int(labels[VERSION])
                attempt = int(labels[ATTEMPT]) if labels.get(ATTEMPT) else None
            except (KeyError, ValueError):
                continue  # not made by envyard's builder
            if await is_building(version_id, attempt):
                continue
            if await self._delete(container):
                removed += 1
                log.info(
                    "removed build container %s (%s, by worker %s) of version %s attempt %s: "
                    "that build is no longer running",
                    container.id[:12],
                    container["State"],
                    labels.get(WORKER, "?"),
                    version_id,
                    attempt if attempt is not None else "?",
                )
        return removed

    async def _require_image(self, image: str) -> None:
        try:
            await self._client().images.inspect(image)
        except DockerError as exc:
            if exc.status == 404:
                raise BuildFailed(f"Image {image} is not on the Docker host.") from None
            raise BuildFailed(f"Docker is not reachable: {exc.message}") from None

    async def _stream(self, container: Any, emit: Emit) -> deque[str]:
        """The container's output as log lines (cut when enormous); returns the last ones."""
        lines, last = LineSplitter(), tail()
        async for chunk in container.log(stdout=True, stderr=True, follow=True):
            await relay(lines.feed(chunk), emit, last)
        await relay(lines.close(), emit, last)
        return last

    async def _read_installed(self, container: Any) -> list[Package]:
        archive = await container.get_archive(f"{WORK}/installed.json")
        member = archive.extractfile("installed.json")
        if member is None:
            raise BuildFailed("The build recorded no installed packages.")
        rows = json.loads(member.read())
        return sorted(
            (Package(name, version, PackageManager.PIP) for name, version in rows),
            key=lambda p: p.key,
        )

    async def revert(self, request: BuildRequest, target: Built, emit: Emit) -> BuildResult:
        repo, tag = self._reference(request)
        await self._require_image(target.location)
        await self._client().images.tag(target.location, repo, tag=tag)
        await emit(f"Tagged {target.location} as {repo}:{tag}, without reinstalling")
        return BuildResult(location=f"{repo}:{tag}", packages=list(target.packages))

    async def discard(self, location: str) -> None:
        """Failed versions are never tagged; nothing to remove."""
