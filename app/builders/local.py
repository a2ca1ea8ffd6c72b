"""Local builder: one real, isolated virtual environment per version, made with uv."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from uv import find_uv_bin

from app.builders import (
    BuildFailed,
    BuildRequest,
    BuildResult,
    Built,
    Emit,
    IsBuilding,
    Stored,
    inventory,
)
from app.builders.output import LineSplitter, count, relay, tail
from app.builders.process import run_child, start
from app.builders.steps import Plan, Steps, Tools
from app.builders.venvs import VenvTemplates
from app.domain.environments import BaseEnvironment
from app.domain.requirements import PackageManager
from app.domain.versions import uses_conda
from app.settings import Settings, conda_channel_url

MIN_PYTHON = (3, 8)
_PROBE = "import json, sys, venv; print(json.dumps([*sys.version_info[:2], sys.executable]))"


class LocalBuilder:
    kind = "local"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._uv = find_uv_bin()
        self._pythons: dict[str, str] | None = None
        self._lock = asyncio.Lock()
        self._neutral: str | None = None
        self._venvs = VenvTemplates(
            self._uv,
            settings.cache_dir / "venv-templates",
            lambda args: run_child([self._uv, *args], cwd=self._neutral_dir(), env=self._env()),
        )

    # -- base environments -------------------------------------------------------------

    async def base_environments(self) -> list[BaseEnvironment]:
        pythons = await self._interpreters()
        return [BaseEnvironment(f"python:{v}", v) for v in pythons]

    async def _interpreters(self) -> dict[str, str]:
        """Python versions on this host ("3.11" -> interpreter), found once and cached."""
        async with self._lock:
            if self._pythons is None:
                self._pythons = await discover_pythons(self._settings.pythons)
            return self._pythons

    async def _interpreter(self, version: str) -> str:
        interpreter = (await self._interpreters()).get(version)
        if interpreter is None:
            raise BuildFailed(f"Python {version} is not available on this build host.")
        return interpreter

    # -- builds --------------------------------------------------------------------------

    def _env_dir(self, request: BuildRequest) -> Path:
        return self._settings.envs_dir / str(request.environment_id) / f"v{request.number}"

    async def build(self, request: BuildRequest, emit: Emit) -> BuildResult:
        target = self._env_dir(request)
        if target.exists():  # left by an earlier failed attempt at this version number
            await asyncio.to_thread(shutil.rmtree, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        exact = request.exact
        previous = request.previous if exact is None else None
        before = previous.packages if previous is not None else ()
        if exact is not None:  # a restore: only the recorded packages, from nothing
            before = [p for p in exact.packages if p.manager is PackageManager.PIP]
        # A conda environment is a prefix whose Python comes from the solve; the others stay
        # uv virtualenvs. Each version is a new one, starting from version N's packages.
        conda = (
            bool(exact.conda_specs)
            if exact is not None
            else uses_conda(request.conda_requirements, before)
        )
        plan = Plan(
            prefix=str(target),
            channels=[conda_channel_url(c) for c in self._settings.conda_channels] if conda else [],
            interpreter=None if conda else await self._interpreter(request.python_version),
            # Version N's prefix: its conda packages are locked in the solve of version N+1.
            locked=(
                str(Path(previous.location).parent.parent)
                if previous is not None and conda and uses_conda((), before)
                else None
            ),
            pins=before,
        )
        meta = target / ".envyard"  # the build's own files, kept beside the environment
        host = LocalHost(self._env(), self._neutral_dir())
        steps = Steps(self._settings, host, self._tools(meta), emit, self._venvs)
        if exact is not None:
            result = await steps.restore(request, plan, exact)
        else:
            result = await steps.make(request, plan)
        await emit(
            f"Environment ready: {count(len(result.packages), 'package')} installed at "
            f"{result.location}"
        )
        return result

    def _neutral_dir(self) -> str:
        """The builds' working directory: an empty one of this process's, outside any
        project (uv looks for a pyproject.toml from there upwards), made again if a cleaner
        of /tmp removed it. Nothing is written there: a build's files are beside its
        environment."""
        if self._neutral is None or not os.path.isdir(self._neutral):
            self._neutral = tempfile.mkdtemp(prefix="envyard-build-")
        else:
            os.utime(self._neutral)  # in use: no cleaner takes it for forgotten
        return self._neutral

    def _tools(self, work: Path) -> Tools:
        return Tools(
            uv=self._uv,
            conda=(sys.executable, "-m", "app.builders.conda_runner"),
            conda_cache=str(self._settings.cache_dir / "conda"),
            work=str(work),
        )

    async def revert(self, request: BuildRequest, target: Built, emit: Emit) -> BuildResult:
        python = Path(target.location)
        await emit(f"Reusing the environment built at {python}")
        if not python.exists():
            raise BuildFailed(f"The environment of that version is gone from {python}.")
        host = LocalHost(self._env(), self._neutral_dir())
        packages = (await inventory.survey(host, str(python.parent.parent))).packages
        if {p.key: p.version for p in packages} != {p.key: p.version for p in target.packages}:
            raise BuildFailed("That version's environment no longer holds what it was built with.")
        await emit(
            f"Environment ready: {count(len(packages), 'package')}, as in the version reverted to"
        )
        # The same prefix as the version reverted to: nothing added on disk.
        return BuildResult(location=str(python), packages=list(target.packages), size_bytes=0)

    async def measure(self, location: str) -> int | None:
        env_dir = self._owned(location)
        if env_dir is None or not env_dir.exists():
            return None
        return await asyncio.to_thread(disk_bytes, env_dir)

    async def discard(self, location: str) -> None:
        env_dir = self._owned(location)
        if env_dir is not None and env_dir.exists():
            await asyncio.to_thread(shutil.rmtree, env_dir, True)

    def _owned(self, location: str) -> Path | None:
        """The environment directory of a version's python, when this builder made it."""
        env_dir = Path(location).parent.parent
        return env_dir if env_dir.is_relative_to(self._settings.envs_dir) else None

    async def archive(self, stored: Stored) -> int | None:
        env_dir = self._owned(stored.location)
        if env_dir is None or not env_dir.exists():
            return 0
        size = await asyncio.to_thread(disk_bytes, env_dir)
        await asyncio.to_thread(shutil.rmtree, env_dir)
        return size

    async def forget(self, archived: Sequence[Stored]) -> int:
        removed = 0
        for stored in archived:
            env_dir = self._owned(stored.location)
            if env_dir is not None and env_dir.exists():
                await asyncio.to_thread(shutil.rmtree, env_dir, True)
                removed += 1
        return removed

    async def sweep(self) -> list[str]:
        """The tools are envyard's own environment: nothing of older versions to remove."""
        return []

    async def reconcile(self, is_building: IsBuilding) -> int:
        """A killed build's directory is replaced by the next build of that version."""
        return 0

    async def aclose(self) -> None:
        """Nothing held open between builds but the empty working directory."""
        if self._neutral is not None:
            shutil.rmtree(self._neutral, ignore_errors=True)
            self._neutral = None

    # -- running uv ----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        """A clean environment: nothing from the host's pip/uv/venv settings leaks in."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "UV_CACHE_DIR": str(self._settings.cache_dir / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "NO_COLOR": "1",
        }
        if self._settings.ca_bundle:
            env["SSL_CERT_FILE"] = self._settings.ca_bundle
        return env


class LocalHost:
    """The build's steps as child processes of this one, in a neutral working directory:
    uv looks for a pyproject.toml from there upwards, and the server's own directory
    (envyard's checkout, say) is some project's."""

    local = True  # its files are this process's: inventory reads them here

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        self._env = env
        self._cwd = cwd

    async def run(self, command: Sequence[str], emit: Emit) -> tuple[int, deque[str]]:
        proc = start(command, cwd=self._cwd, env=self._env)
        last = tail()
        try:
            lines = LineSplitter()
            while chunk := await proc.read():
                await relay(lines.feed(chunk), emit, last)
            await relay(lines.close(), emit, last)
            return await proc.wait(), last
        finally:  # cancelled, or the log failed: stop it with us
            await proc.stop()

    async def output(self, command: Sequence[str]) -> str:
        return (await run_child(list(command), cwd=self._cwd, env=self._env)).decode()

    async def put(self, files: Mapping[str, bytes]) -> None:
        # A build's few small files, written on the loop: a thread would take longer.
        for path, data in files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)

    async def get(self, path: str) -> str:
        return Path(path).read_text()  # a build's own small file (a lock), as `put`


def disk_bytes(root: Path) -> int:
    """The bytes of the files under `root`, each file counted once (hard links)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


async def _capture(command: list[str], env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BuildFailed(f"{Path(command[0]).name} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


def _candidates(extra: Sequence[str]) -> list[str]:
    found: list[str] = list(extra)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or "shims" in directory:  # pyenv shims answer for one version only
            continue
        for minor in range(MIN_PYTHON[1], 20):
            found.append(os.path.join(directory, f"python3.{minor}"))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found += sorted(str(p) for p in pyenv_root.glob("versions/*/bin/python3"))
    found += [f"/usr/bin/python3.{minor}" for minor in range(MIN_PYTHON[1], 20)]
    unique = []
    for path in found:
        if path not in unique and os.access(path, os.X_OK):
            unique.append(path)
    return unique


async def discover_pythons(extra: Sequence[str] = ()) -> dict[str, str]:
    """Each Python 3 version on this host with a working venv module -> one interpreter."""

    async def probe(path: str) -> tuple[int, int, str] | None:
        try:
            out = await asyncio.wait_for(_capture([path, "-I", "-c", _PROBE]), 10)
            major, minor, executable = json.loads(out)
        except (BuildFailed, TimeoutError, ValueError, OSError):
            return None
        return major, minor, executable

    results = await asyncio.gather(*(probe(p) for p in _candidates(extra)))
    pythons: dict[str, str] = {}
    for result in results:
        if result is not None and (result[0], result[1]) >= MIN_PYTHON:
            pythons.setdefault(f"{result[0]}.{result[1]}", result[2])
    return dict(sorted(pythons.items(), key=lambda kv: tuple(map(int, kv[0].split(".")))))
