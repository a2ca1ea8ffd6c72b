"""Docker builder: one image per version, through aiodocker only.

Version 1 starts from the base environment's image, version N+1 from version N's image, so
the seed's rules hold (libraries removed from the request may remain). Each build runs one
container from the starting image with host networking: a fixed driver script (ours) creates
the venv if needed and pip-installs a requirements file (the user's libraries, as data, in a
tar put into the container), then records the installed packages. On success the container
is committed as `envyard/<organization>/<short name>:<version>`; on failure or cancellation
it is removed and nothing is tagged. Nothing the user typed reaches a shell or a Dockerfile.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import tarfile
from pathlib import Path
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from app.builders import BuildFailed, BuildRequest, BuildResult, Built, Emit
from app.domain.environments import BaseEnvironment
from app.domain.requirements import PackageManager
from app.domain.versions import Package
from app.settings import Settings

log = logging.getLogger(__name__)

VENV = "/opt/envyard/venv"
WORK = "/envyard"

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
print("Recorded " + str(len(json.loads(listing))) + " installed packages", flush=True)
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

    def _client(self) -> aiodocker.Docker:
        # Lazily: API processes describe base environments without a Docker socket.
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._settings.docker_host)
        return self._docker

    async def aclose(self) -> None:
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
            "Labels": {"envyard.version": str(request.version_id)},
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
            await self._stream(container, emit)
            status = (await container.wait()).get("StatusCode", 1)
            if status != 0:
                raise BuildFailed(f"pip install failed (exit code {status}); see the lines above.")
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
                    "Labels": {"envyard.version": str(request.version_id)},
                },
            )
            await emit(
                f"Image {repo}:{tag} ({committed.get('Id', '')[:19]}) holds "
                f"{len(packages)} packages"
            )
            return BuildResult(location=f"{repo}:{tag}", packages=packages)
        finally:
            with contextlib.suppress(DockerError):
                await container.delete(force=True)

    async def _require_image(self, image: str) -> None:
        try:
            await self._client().images.inspect(image)
        except DockerError as exc:
            if exc.status == 404:
                raise BuildFailed(f"Image {image} is not on the Docker host.") from None
            raise BuildFailed(f"Docker is not reachable: {exc.message}") from None

    async def _stream(self, container: Any, emit: Emit) -> None:
        pending = ""
        async for chunk in container.log(stdout=True, stderr=True, follow=True):
            pending += chunk
            *complete, pending = pending.split("\n")
            for line in complete:
                if line.strip():
                    await emit(line.rstrip())
        if pending.strip():
            await emit(pending.rstrip())

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
