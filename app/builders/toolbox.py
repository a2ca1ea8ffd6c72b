"""The build tools in Docker: uv and the conda runner (with rattler), in a volume per engine.

Images carry only the environment: the tools are never installed into a build container.
They are copied once per engine into a named volume whose name says what is in it (a
digest of uv's and py-rattler's versions and of the runner), and mounted read-only into
every build container at /mnt; a second volume at /media holds uv's and rattler's package
caches, one per organization of a deployment (builds run code their users chose, so
caches are never shared across organizations). Both paths exist, empty, in Debian's images, so
mounting there adds nothing to a committed image; volumes are never committed.

Filling is safe with any number of workers on one engine: each copies into its own
directory of the volume and renames it to `tools` at the end, and a worker that lost the
race deletes its copy. The copy runs in a container of the operator's base image, never of
a user's image (user code must never run while the volume is writable). A filler killed
mid-copy leaves a directory that a later filler removes after an hour (a new uv or
py-rattler makes a new volume; `envyard gc` removes the old ones no container uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import platform
import sys
import tarfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiodocker
from aiodocker.exceptions import DockerError
from aiodocker.volumes import DockerVolume
from uv import find_uv_bin

from app.builders import BuildFailed

TOOLS_MOUNT: Final = "/mnt"
CACHE_MOUNT: Final = "/media"
TOOLS: Final = f"{TOOLS_MOUNT}/tools"

# Run by the image's python3 in the filler container: the copy becomes `tools` at once.
_RENAME = """\
import os, shutil, sys, time
mine = os.path.join(sys.argv[1], sys.argv[2])
try:
    os.rename(mine, os.path.join(sys.argv[1], "tools"))
except OSError:
    shutil.rmtree(mine, ignore_errors=True)  # another filler was first
for name in os.listdir(sys.argv[1]):
    path = os.path.join(sys.argv[1], name)
    try:  # another filler's copy may be renamed or removed meanwhile
        if name.startswith(".fill-") and time.time() - os.stat(path).st_mtime > 3600:
            shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass
"""


def _runner() -> Path:
    return Path(__file__).with_name("conda_runner.py")


def _rattler() -> Path:
    spec = importlib.util.find_spec("rattler")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise BuildFailed("py-rattler is not installed where this worker runs.")
    return Path(next(iter(spec.submodule_search_locations)))


def digest() -> str:
    """What the tools are: a new uv, py-rattler or runner makes a new volume."""
    h = hashlib.sha256(f"{sys.platform} {platform.machine()}\n".encode())
    for dist in ("uv", "py-rattler"):
        h.update(f"{dist}=={importlib.metadata.version(dist)}\n".encode())
    h.update(_runner().read_bytes())
    return h.hexdigest()[:16]


def _archive(top: str, version: str, uv: str) -> bytes:
    """The tools as a tar under `top/`: uv, and python/ holding the runner and rattler."""
    buffer = io.BytesIO()

    def no_cache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in info.name else info

    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(uv, arcname=f"{top}/uv")
        tar.add(_runner(), arcname=f"{top}/python/conda_runner.py")
        tar.add(_rattler(), arcname=f"{top}/python/rattler", filter=no_cache)
        data = version.encode()
        info = tarfile.TarInfo(f"{top}/VERSION")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Toolbox:
    """The tools volume of one engine, filled when first needed."""

    def __init__(self, labels: dict[str, str], version: str | None = None) -> None:
        """`labels`: of the containers that fill the volume; `version`: the tools' digest
        (tests set their own, to fill a volume of their own)."""
        self._labels = labels
        self._digest = version or digest()
        # Here, not in the thread that packs the tools: sysconfig's first use is not
        # thread-safe (two threads packing at once saw None for its EXE).
        self._uv = find_uv_bin()
        self._lock = asyncio.Lock()

    @property
    def volume(self) -> str:
        return f"envyard-tools-{self._digest}"

    def mounts(self, cache_volume: str) -> list[dict[str, Any]]:
        """The build container's mounts: tools read-only, its caches writable."""
        return [
            {
                "Type": "volume",
                "Source": self.volume,
                "Target": TOOLS_MOUNT,
                "ReadOnly": True,
                "VolumeOptions": {"NoCopy": True},
            },
            {
                "Type": "volume",
                "Source": cache_volume,
                "Target": CACHE_MOUNT,
                "VolumeOptions": {"NoCopy": True},
            },
        ]

    async def ensure(
        self,
        docker: aiodocker.Docker,
        image: str,
        container: Any,
        prepare: Callable[[], Awaitable[object]],
    ) -> None:
        """Make sure the tools volume that the build `container` (created, not started)
        mounts holds the tools, copying them first if not: once per engine, and again only
        if the volume was removed. The copy runs in a container of `image`, an operator's
        base image (never a user's: the volume is writable there), after `prepare()` made
        sure the engine has it."""
        if await self._filled(container):
            return
        async with self._lock:
            if not await self._filled(container):
                await prepare()
                await self._fill(docker, image)

    async def _fill(self, docker: aiodocker.Docker, image: str) -> None:
        mine = f".fill-{uuid.uuid4().hex}"
        try:
            container = await docker.containers.create(
                {
                    "Image": image,
                    # -S: not even the image's site-packages run while the volume is writable.
                    "Cmd": ["python3", "-I", "-S", "-c", _RENAME, TOOLS_MOUNT, mine],
                    "Labels": self._labels,
                    "HostConfig": {
                        "NetworkMode": "none",
                        "Mounts": [
                            {
                                "Type": "volume",
                                "Source": self.volume,
                                "Target": TOOLS_MOUNT,
                                "VolumeOptions": {"NoCopy": True},
                            }
                        ],
                    },
                }
            )
        except DockerError as exc:
            raise BuildFailed(f"Docker could not prepare the build tools: {exc.message}") from None
        try:
            if await self._filled(container):
                return
            data = await asyncio.to_thread(_archive, mine, self._digest, self._uv)
            # A file object: aiohttp sends it in chunks instead of holding up the loop.
            await container.put_archive(TOOLS_MOUNT, io.BytesIO(data))
            await container.start()
            status = (await container.wait()).get("StatusCode", 1)
            if not await self._filled(container):  # filled, by us or another: good
                said = "".join(await container.log(stdout=True, stderr=True)).strip()
                raise BuildFailed(
                    f"The build tools could not be copied into volume {self.volume} "
                    f"(exit code {status}): {said or 'no output'}"
                )
        finally:
            # Shielded: a cancelled build still removes its filler.
            with contextlib.suppress(DockerError):
                await asyncio.shield(container.delete(force=True))

    async def prune(self, docker: aiodocker.Docker) -> list[str]:
        """Remove the tools volumes of other tool versions (an older uv, py-rattler or
        runner) that no container uses; their names."""
        found = await docker.volumes.list(filters={"name": "envyard-tools-"})
        removed = []
        for volume in found.get("Volumes") or []:
            name = volume["Name"]
            if not name.startswith("envyard-tools-") or name == self.volume:
                continue
            try:
                await DockerVolume(docker, name).delete()
            except DockerError as exc:
                if exc.status not in (404, 409):  # 409: in use (an older worker runs)
                    raise
                continue
            removed.append(name)
        return removed

    async def _filled(self, container: Any) -> bool:
        try:
            archive = await container.get_archive(f"{TOOLS}/VERSION")
        except DockerError as exc:
            if exc.status == 404:
                return False
            raise
        member = archive.extractfile("VERSION")
        return member is not None and member.read().decode() == self._digest
