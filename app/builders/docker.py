"""Docker builder: one image per version, through aiodocker only.

Version 1 starts from the base environment's image, version N+1 from version N's image, so
the seed's rules hold (libraries removed from the request may remain). Each build runs one
container from the starting image with host networking, and runs the build's steps in it
(app/builders/steps.py, the same as the local builder's) one command at a time: uv makes the
virtualenv at /opt/envyard/venv or, with conda libraries, the conda runner solves and links
the conda prefix at /opt/envyard/conda (updated in place from the previous version's, its
packages locked); uv installs the pip libraries into it. The tools come from a read-only
volume and the package caches from another (app/builders/toolbox.py); the build's own files
(requests, requirements, the CA bundle) are removed before the commit, so the image holds
only the environment. On success the container is committed as
`envyard/<organization>/<short name>:<version>`; on failure or cancellation it is removed and
nothing is tagged. Nothing the user typed reaches a shell or a Dockerfile.

Build containers are labelled with their deployment (ENVYARD_QUEUE_NAME: deployments may
share an engine, and their version ids collide), version, attempt and worker. A worker
killed mid-build cannot remove its container; `reconcile`, which every worker runs at start
and periodically, removes the build containers whose attempt the database no longer has
BUILDING.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import socket
import tarfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import aiodocker
from aiodocker.exceptions import DockerError

from app.builders import (
    BuildFailed,
    BuildRequest,
    BuildResult,
    Built,
    Emit,
    IsBuilding,
    Stored,
    registry,
)
from app.builders.output import LineSplitter, count, relay, tail
from app.builders.process import ChildFailed
from app.builders.steps import Plan, Steps, Tools
from app.builders.toolbox import CACHE_MOUNT, Toolbox
from app.builders.toolbox import TOOLS as TOOLBOX
from app.domain.environments import BaseEnvironment
from app.domain.requirements import PackageManager
from app.domain.versions import uses_conda
from app.settings import Settings, conda_channel_url

log = logging.getLogger(__name__)

VENV = "/opt/envyard/venv"
CONDA = "/opt/envyard/conda"
WORK = "/envyard"
PREVIOUS = f"{WORK}/previous"  # a rebased version's previous conda records
STALE_FILLER_SECONDS = 600
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEPLOYMENT = "envyard.deployment"
VERSION = "envyard.version"
ATTEMPT = "envyard.attempt"
WORKER = "envyard.worker"
ROLE = "envyard.role"

# Keeps the build container running while its steps are executed in it.
IDLE = "import time\nwhile True: time.sleep(3600)"
# Runs a step with its standard error sent to standard output, so that the lines of both
# come in the order they were written. The command is an argument list: no shell.
MERGED = "import os, sys; os.dup2(1, 2); os.execvp(sys.argv[1], sys.argv[1:])"


def _tar(files: dict[str, bytes]) -> bytes:
    """Files at absolute paths, with their directories."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = sorted({str(p) for f in files for p in PurePosixPath(f).parents} - {"/"})
        for directory in directories:
            info = tarfile.TarInfo(directory.strip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name.strip("/"))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def describe(command: Sequence[str]) -> str:
    """A step's command as a person recognises it."""
    if any(part.endswith("conda_runner.py") for part in command):
        return "the conda runner"
    return " ".join(
        PurePosixPath(part).name if i == 0 else part for i, part in enumerate(command[:3])
    )


class ContainerHost:
    """A build's steps as commands executed in its running container, with the build-only
    environment variables given to each command (a commit would keep the container's)."""

    def __init__(self, container: Any, env: Mapping[str, str]) -> None:
        self._container = container
        self._env = dict(env)

    async def _exec(self, command: Sequence[str], sink: Any) -> int:
        """Run `command`, each output message to `sink(message)`; its exit code, or -1 when
        Docker does not say it (a dropped stream is never a success)."""
        try:
            execution = await self._container.exec(
                list(command), stdout=True, stderr=True, workdir=WORK, environment=self._env
            )
            async with execution.start(detach=False) as stream:
                while (message := await stream.read_out()) is not None:
                    await sink(message)
            code = (await execution.inspect()).get("ExitCode")
        except DockerError as exc:
            raise ChildFailed(f"{describe(command)} could not run: {exc.message}") from None
        return -1 if code is None else int(code)

    async def run(self, command: Sequence[str], emit: Emit) -> tuple[int, deque[str]]:
        lines, last = LineSplitter(), tail()

        async def sink(message: Any) -> None:
            await relay(lines.feed(message.data), emit, last)

        code = await self._exec(["python3", "-I", "-S", "-c", MERGED, *command], sink)
        await relay(lines.close(), emit, last)
        return code, last

    async def output(self, command: Sequence[str]) -> str:
        out, err = bytearray(), bytearray()

        async def sink(message: Any) -> None:
            (out if message.stream == 1 else err).extend(message.data)

        code = await self._exec(command, sink)
        if code != 0:
            said = (err or out).decode(errors="replace").strip().splitlines()
            raise ChildFailed(
                f"{describe(command)} failed (exit code {code}): "
                f"{said[-1] if said else 'it said nothing'}"
            )
        return out.decode(errors="replace")

    async def put(self, files: Mapping[str, bytes]) -> None:
        try:
            await self._container.put_archive("/", _tar(dict(files)))
        except DockerError as exc:
            raise ChildFailed(f"files could not be put into the build: {exc.message}") from None

    async def get(self, path: str) -> str:
        try:
            archive = await self._container.get_archive(path)
        except DockerError as exc:
            raise ChildFailed(f"{path} could not be read from the build: {exc.message}") from None
        member = archive.extractfile(PurePosixPath(path).name)
        if member is None:
            raise ChildFailed(f"{path} is not a file in the build container.")
        return member.read().decode()


TOOLS = Tools(
    uv=f"{TOOLBOX}/uv",
    # The image's own Python runs the runner, with rattler beside it (on sys.path as the
    # script's directory); -B: the tools volume is read-only.
    conda=("python3", "-B", "-E", "-s", f"{TOOLBOX}/python/conda_runner.py"),
    conda_cache=f"{CACHE_MOUNT}/conda",
    work=WORK,
)


class DockerBuilder:
    kind = "docker"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._images = dict(settings.docker_images)
        self._docker: aiodocker.Docker | None = None
        self._removals: set[asyncio.Task[bool]] = set()
        self._toolbox = Toolbox({DEPLOYMENT: settings.queue_name, ROLE: "tools"})

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

    def _reference(self, request: BuildRequest | Stored) -> tuple[str, str]:
        """The version's repository and tag (in the registry, if one is set)."""
        repo = f"envyard/{request.organization}/{request.short_name}"
        if self._settings.registry:
            repo = f"{self._settings.registry}/{repo}"
        return repo, str(request.number)

    async def build(self, request: BuildRequest, emit: Emit) -> BuildResult:
        docker = self._client()
        exact = request.exact
        previous = request.previous if exact is None else None
        start = previous.location if previous is not None else self._base_image(request)
        found = await self._require_image(start, emit)
        layers = len(found.get("RootFS", {}).get("Layers", []))
        repo, tag = self._reference(request)
        before = previous.packages if previous is not None else ()
        if exact is not None:  # a restore: only the recorded packages, from the base image
            before = [p for p in exact.packages if p.manager is PackageManager.PIP]
        # The chain of versions never breaks at overlay2's depth limit: an image that would
        # pass the bound is built from the base image again, with the previous packages.
        rebase = previous is not None and layers >= self._settings.max_image_layers
        if rebase:
            start = self._base_image(request)
            found = await self._require_image(start, emit)
            await emit(
                f"Version {request.number - 1}'s image has {layers} layers (the bound is "
                f"ENVYARD_MAX_IMAGE_LAYERS={self._settings.max_image_layers}): building version "
                f"{request.number} from the base image again, with the previous version's "
                f"{count(len(before), 'package')}"
            )
        await emit(f"Starting from image {start}")
        in_place = previous is not None and not rebase
        conda, conda_before = uses_conda(request.conda_requirements, before), uses_conda((), before)
        if exact is not None:
            conda, conda_before = bool(exact.conda_specs), False
        plan = Plan(
            prefix=CONDA if conda else VENV,
            channels=[conda_channel_url(c) for c in self._settings.conda_channels] if conda else [],
            # The venv of the image started from is updated in place; a new image makes it.
            interpreter=request.python_version if not in_place and not conda else None,
            # So is its conda prefix, its packages kept where the solve allows (rebased: the
            # previous image's conda records, copied in, are kept the same way).
            locked=(CONDA if in_place else PREVIOUS) if conda_before else None,
            # A prefix made now (a new image, or conda libraries added to a venv) gets the
            # previous version's pip packages.
            pins=before if not in_place or (conda and not conda_before) else (),
        )
        try:
            container = await docker.containers.create(self._config(request, start))
        except DockerError as exc:
            raise BuildFailed(
                f"Docker could not create the build container: {exc.message}"
            ) from None
        try:
            # Filled from the configured base image, never from a user's own image.
            base = self._base_image(request)
            await self._toolbox.ensure(
                docker, base, container, lambda: self._require_image(base, emit)
            )
            files = {f"{WORK}/tmp/.keep": b""}
            if self._settings.ca_bundle:
                files[f"{WORK}/ca.pem"] = await asyncio.to_thread(
                    Path(self._settings.ca_bundle).read_bytes
                )
            await container.put_archive("/", _tar(files))
            if rebase and conda_before:
                assert previous is not None
                await self._copy_conda_records(previous.location, container)
            await container.start()
            host = ContainerHost(container, self._build_env())
            steps = Steps(self._settings, host, TOOLS, emit)
            if exact is not None:
                result = await steps.restore(request, plan, exact)
            else:
                result = await steps.make(request, plan)
            # The build's own files go; so does a venv that a conda prefix replaced.
            replaced = [VENV] if in_place and conda and not conda_before else []
            await host.output(["rm", "-rf", WORK, *replaced])
            bin_dir = f"{plan.prefix}/bin"
            committed = await container.commit(
                repository=repo,
                tag=tag,
                message=f"envyard version {request.number} of {request.short_name}",
                config={
                    "Env": [
                        f"PATH={bin_dir}:{SYSTEM_PATH}",
                        # A commit keeps the image's other variables: a venv made a conda
                        # prefix leaves no VIRTUAL_ENV behind.
                        *(
                            [f"CONDA_PREFIX={CONDA}", "VIRTUAL_ENV="]
                            if conda
                            else [f"VIRTUAL_ENV={VENV}"]
                        ),
                        "LANG=C.UTF-8",
                    ],
                    "Cmd": ["python"],
                    # The image inherits the container's labels (a commit merges them);
                    # containers run from it must not look like build containers.
                    "Labels": {ROLE: "image"},
                },
            )
            image = await docker.images.inspect(committed["Id"])
            added = max(int(image.get("Size", 0)) - int(found.get("Size", 0)), 0)
            await emit(
                f"Image {repo}:{tag} ({committed.get('Id', '')[:19]}) holds "
                f"{count(len(result.packages), 'package')}; its layer adds {added} bytes"
            )
            location = await self._publish(repo, tag, emit)
            return replace(result, location=location, size_bytes=added)
        finally:
            await self._remove(container)

    def _build_env(self) -> dict[str, str]:
        """What uv and rattler are told, per command: never in the container's own
        environment, which a commit would keep in the image."""
        env = {
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "UV_CACHE_DIR": f"{CACHE_MOUNT}/uv",
            "UV_LINK_MODE": "copy",  # the cache is another file system: no hard links
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_PYTHON_PREFERENCE": "only-system",
            "TMPDIR": f"{WORK}/tmp",
        }
        if self._settings.ca_bundle:
            env["SSL_CERT_FILE"] = f"{WORK}/ca.pem"
        return env

    def _config(self, request: BuildRequest, image: str) -> dict[str, Any]:
        """The build container: idle until its steps are executed in it, host network, the
        tools and the organization's caches mounted."""
        return {
            "Image": image,
            "Cmd": ["python3", "-I", "-S", "-c", IDLE],
            "Env": [f"PATH={SYSTEM_PATH}", "LANG=C.UTF-8"],
            "User": "root",
            "WorkingDir": "/",
            "Labels": self._labels(request),
            "HostConfig": {
                "NetworkMode": "host",
                "Mounts": self._toolbox.mounts(self._cache_volume(request)),
            },
        }

    def _cache_volume(self, request: BuildRequest) -> str:
        """The package caches of one organization of one deployment: builds run code their
        users chose (build backends, .pth files), so no cache is shared across them."""
        owner = f"{self._settings.queue_name}\n{request.organization}".encode()
        return f"envyard-cache-{hashlib.sha256(owner).hexdigest()[:16]}"

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

    async def sweep(self) -> list[str]:
        return await self._toolbox.prune(self._client())

    async def reconcile(self, is_building: IsBuilding) -> int:
        """Remove this deployment's build containers whose attempt is no longer building,
        and the tools fillers of workers killed while copying (a copy takes seconds)."""
        fillers = await self._client().containers.list(
            all=True,
            filters={"label": [f"{DEPLOYMENT}={self._settings.queue_name}", f"{ROLE}=tools"]},
        )
        stale = time.time() - STALE_FILLER_SECONDS
        removed = 0
        for filler in fillers:
            if filler["Created"] < stale and await self._delete(filler):
                removed += 1
                log.info(
                    "removed build tools filler %s, left for %s s",
                    filler.id[:12],
                    STALE_FILLER_SECONDS,
                )
        containers = await self._client().containers.list(
            all=True,
            filters={"label": [f"{DEPLOYMENT}={self._settings.queue_name}", f"{ROLE}=build"]},
        )
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

    def _auth(self, image: str) -> dict[str, str] | None:
        """Credentials for images of the configured registry only (never for another)."""
        registry, username = self._settings.registry, self._settings.registry_username
        if not registry or not username or not image.startswith(registry.split("/")[0] + "/"):
            return None
        return {"username": username, "password": self._settings.registry_password or ""}

    async def _require_image(self, image: str, emit: Emit | None = None) -> dict[str, Any]:
        """The image's description, pulled first from the registry (if one is set) when
        this engine lacks it; BuildFailed when it cannot be had."""
        images = self._client().images
        try:
            found: dict[str, Any] = await images.inspect(image)
            return found
        except DockerError as exc:
            if exc.status != 404:
                raise BuildFailed(f"Docker is not reachable: {exc.message}") from None
        if not self._settings.registry:
            raise BuildFailed(f"Image {image} is not on the Docker host.")
        if emit is not None:
            await emit(f"Pulling {image}: this Docker engine does not have it")
        try:
            await images.pull(image, auth=self._auth(image))
            pulled: dict[str, Any] = await images.inspect(image)
        except DockerError as exc:
            raise BuildFailed(
                f"Image {image} is not on this Docker host and could not be pulled: {exc.message}"
            ) from None
        return pulled

    async def _publish(self, repo: str, tag: str, emit: Emit) -> str:
        """The reference activation hands out: `repo:tag` on one engine; with a registry,
        the image pushed there and pinned by digest, so what runs is what was built."""
        if not self._settings.registry:
            return f"{repo}:{tag}"
        digest = None
        try:
            async for event in self._client().images.push(
                repo, tag=tag, auth=self._auth(repo), stream=True
            ):
                digest = (event.get("aux") or {}).get("Digest") or digest
        except DockerError as exc:
            raise BuildFailed(f"Pushing {repo}:{tag} failed: {exc.message}") from None
        if not digest:
            raise BuildFailed(f"The registry did not say the digest of {repo}:{tag}.")
        await emit(f"Pushed {repo}:{tag} as {repo}@{digest}")
        return f"{repo}@{digest}"

    async def _copy_conda_records(self, image: str, container: Any) -> None:
        """The conda records of `image`'s prefix into the build container, at PREVIOUS: the
        solve of a rebased version keeps those packages where it can."""
        source = await self._client().containers.create({"Image": image, "Cmd": ["true"]})
        try:
            archive = await source.get_archive(f"{CONDA}/conda-meta")
            files = {
                f"{PREVIOUS}/{member.name}": extracted.read()
                for member in archive.getmembers()
                if member.isfile() and (extracted := archive.extractfile(member)) is not None
            }
        finally:
            await self._delete(source)
        await container.put_archive("/", _tar(files))

    async def revert(self, request: BuildRequest, target: Built, emit: Emit) -> BuildResult:
        repo, tag = self._reference(request)
        await self._require_image(target.location, emit)
        await self._client().images.tag(target.location, repo, tag=tag)
        await emit(f"Tagged {target.location} as {repo}:{tag}, without reinstalling")
        location = await self._publish(repo, tag, emit)
        # Another name for the same image: no bytes added.
        return BuildResult(location=location, packages=list(target.packages), size_bytes=0)

    async def measure(self, location: str) -> int | None:
        """Its builds say their layers' size."""
        return None

    async def discard(self, location: str) -> None:
        """Failed versions are never tagged; nothing to remove."""

    async def archive(self, stored: Stored) -> int | None:
        """Untag the version's image on this engine (its layers go with it unless a later
        version's image is built on them) and delete its manifest from the registry when
        the location is a digest there (the registry frees the blobs at its own garbage
        collection). The bytes freed on this engine."""
        repo, tag = self._reference(stored)
        freed = await self._untag(f"{repo}:{tag}", stored.size_bytes)
        if self._settings.registry and "@sha256:" in stored.location:
            await registry.delete_manifest(self._settings, stored.location)
        return freed

    async def _untag(self, reference: str, size: int | None) -> int:
        try:
            answer = await self._client().images.delete(reference)
        except DockerError as exc:
            if exc.status == 404:
                return 0
            if exc.status == 409:  # a container runs it (a notebook, say): kept for now
                log.warning("image %s is in use; not removed: %s", reference, exc.message)
                return 0
            raise
        deleted = any("Deleted" in entry for entry in answer or [])
        return (size or 0) if deleted else 0

    async def forget(self, archived: Sequence[Stored]) -> int:
        """Untag this engine's copies of archived versions' images (pulled here, say)."""
        wanted = {":".join(self._reference(s)) for s in archived}
        wanted |= {s.location for s in archived if "@sha256:" in s.location}
        images = await self._client().images.list(
            filters={"label": [f"{DEPLOYMENT}={self._settings.queue_name}"]}
        )
        held = {
            reference
            for image in images
            for reference in [*(image.get("RepoTags") or []), *(image.get("RepoDigests") or [])]
        }
        found = held & wanted
        for reference in sorted(found):
            await self._untag(reference, None)
        return len(found)
