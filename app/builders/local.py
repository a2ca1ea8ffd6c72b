"""Local builder: one real, isolated virtual environment per version, made with uv."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name
from uv import find_uv_bin

from app.builders import BuildFailed, BuildRequest, BuildResult, Built, Emit, IsBuilding, inventory
from app.builders.lock import write_lock
from app.builders.output import LineSplitter, count, explain_failure, relay, tail
from app.builders.process import ChildFailed
from app.domain.environments import BaseEnvironment
from app.domain.requirements import PackageManager
from app.domain.versions import Package, pip_replacing_conda, uses_conda
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
        previous = request.previous
        conda_before = previous is not None and uses_conda((), previous.packages)
        # A conda environment is a prefix whose Python comes from the solve; the others stay
        # uv virtualenvs.
        conda = uses_conda(request.conda_requirements, previous.packages if previous else ())
        channels = [conda_channel_url(c) for c in self._settings.conda_channels] if conda else []
        if conda:
            # Version N's prefix: its packages are locked in the solve of version N+1.
            locked = Path(previous.location).parent.parent if previous and conda_before else None
            python = await self._conda_prefix(request, target, channels, locked, emit)
        else:
            interpreter = await self._interpreter(request.python_version)
            await emit(
                f"Creating a Python {request.python_version} environment for version "
                f"{request.number}"
            )
            await self._uv_run(emit, "venv", "--no-project", "--python", interpreter, str(target))
            python = target / "bin" / "python"
        meta = target / ".envyard"
        meta.mkdir(exist_ok=True)
        # pip never replaces what conda installed: its distributions are pinned as constraints,
        # and a pip library asking for another version of one is refused, naming it.
        conda_owned = (await inventory.survey(python)).conda_distributions
        clashes = pip_replacing_conda(request.pip_requirements, conda_owned)
        if clashes:
            raise BuildFailed(
                f"{'; '.join(clashes)}: pip never replaces a conda package; change the conda "
                "library instead"
            )
        pip_args = ["--python", str(python)]
        if conda_owned:
            constraints = meta / "conda-owned.txt"
            constraints.write_text(_pins(conda_owned))
            pip_args += ["--constraint", str(constraints)]
        if previous is not None and any(p.manager is PackageManager.PIP for p in previous.packages):
            pins = [p for p in previous.packages if p.manager is PackageManager.PIP]
            await emit(
                f"Starting from the {count(len(pins), 'pip package')} of the previous version"
            )
            pinned = meta / "previous.txt"
            pinned.write_text(_pins(pins))
            await self._uv_run(
                emit, "pip", "install", *pip_args, "--no-deps", "-r", str(pinned), index=True
            )
        if request.pip_requirements:
            await emit(
                f"Installing {count(len(request.pip_requirements), 'pip library', 'pip libraries')}"
            )
            wanted = meta / "requirements.txt"
            wanted.write_text("".join(f"{line}\n" for line in request.pip_requirements))
            await self._uv_run(emit, "pip", "install", *pip_args, "-r", str(wanted), index=True)
        packages = await inventory.installed(python)
        (meta / "installed.txt").write_text(_pins(packages))
        try:
            lockfile = await self._lockfile(python, packages, channels)
        except ChildFailed as exc:  # the environment is built: it is not lost for its lock
            await emit(f"No lock file written ({exc}); it is made when first asked for")
            lockfile = ""
        await emit(f"Environment ready: {count(len(packages), 'package')} installed at {python}")
        return BuildResult(str(python), packages, lockfile=lockfile, channels=channels)

    async def _conda_prefix(
        self,
        request: BuildRequest,
        target: Path,
        channels: list[str],
        locked: Path | None,
        emit: Emit,
    ) -> Path:
        """Solve and link the conda libraries (and Python itself) into `target`, keeping the
        packages of the prefix `locked` where the solve allows."""
        await emit(
            f"Creating a conda environment with Python {request.python_version} for version "
            f"{request.number}"
        )
        await self._conda(
            emit,
            {
                "action": "install",
                "prefix": str(target),
                "channels": channels,
                "specs": [f"python {request.python_version}.*", *request.conda_requirements],
                "cache_dir": str(self._settings.cache_dir / "conda"),
                "previous_prefix": str(locked) if locked is not None else None,
            },
        )
        python = target / "bin" / "python"
        if not python.exists():
            raise BuildFailed("The conda environment has no bin/python.")
        return python

    async def _lockfile(self, python: Path, packages: list[Package], channels: list[str]) -> str:
        """A rattler lock file of exactly `packages`: conda records as linked (when conda
        `channels` were used), pip distributions with the URL and hash of their file."""
        pip = [p for p in packages if p.manager is PackageManager.PIP]
        with tempfile.TemporaryDirectory(prefix="envyard-lock-") as work:
            files = await self._pip_files(python, pip, Path(work))
        return await write_lock(
            channels,
            [(p.name, p.version, files.get(p.key[1], "")) for p in pip],
            self._settings.index_url,
            python.parent.parent if channels else None,
        )

    async def _pip_files(self, python: Path, pip: list[Package], work: Path) -> dict[str, str]:
        """Canonical name -> the URL (with `#sha256=`) of the file the index has for that
        exact version, as uv resolves it; empty where the index does not say."""
        if not pip:
            return {}
        pins, lock = work / "pins.txt", work / "pylock.toml"
        pins.write_text(_pins(pip))
        command = [
            self._uv, "pip", "compile", "--no-config", "--quiet", "--color", "never",
            "--no-deps", "--format", "pylock.toml", "--python", str(python),
            *self._index_args(), "-o", str(lock), str(pins),
        ]  # fmt: skip
        try:
            await self._run(_quiet, "uv pip compile", command, "the package index")
        except BuildFailed:  # e.g. the index is gone since: the lock still lists the pins
            return {}
        files: dict[str, str] = {}
        for package in tomllib.loads(lock.read_text()).get("packages", []):
            for wheel in package.get("wheels", []) or [package.get("sdist", {})]:
                if wheel.get("url"):
                    digest = wheel.get("hashes", {}).get("sha256")
                    suffix = f"#sha256={digest}" if digest else ""
                    files[canonicalize_name(package["name"])] = wheel["url"] + suffix
                    break
        return files

    async def revert(self, request: BuildRequest, target: Built, emit: Emit) -> BuildResult:
        python = Path(target.location)
        await emit(f"Reusing the environment built at {python}")
        if not python.exists():
            raise BuildFailed(f"The environment of that version is gone from {python}.")
        packages = await inventory.installed(python)
        if {p.key: p.version for p in packages} != {p.key: p.version for p in target.packages}:
            raise BuildFailed("That version's environment no longer holds what it was built with.")
        await emit(
            f"Environment ready: {count(len(packages), 'package')}, as in the version reverted to"
        )
        return BuildResult(location=str(python), packages=list(target.packages))

    async def discard(self, location: str) -> None:
        env_dir = Path(location).parent.parent
        if env_dir.is_relative_to(self._settings.envs_dir) and env_dir.exists():
            await asyncio.to_thread(shutil.rmtree, env_dir, True)

    async def reconcile(self, is_building: IsBuilding) -> int:
        """A killed build's directory is replaced by the next build of that version."""
        return 0

    async def aclose(self) -> None:
        """Nothing held open between builds."""

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

    def _index_args(self) -> list[str]:
        args: list[str] = []
        if self._settings.index_url:
            args += ["--index-url", self._settings.index_url]
        for url in self._settings.extra_index_urls:
            args += ["--extra-index-url", url]
        return args

    async def _uv_run(self, emit: Emit, *args: str, index: bool = False) -> None:
        command = [self._uv, *args, "--no-config", "--no-progress", "--color", "never"]
        if index:
            command += self._index_args()
        await emit("$ uv " + " ".join(args))
        step = " ".join(args[:2]) if args[0] == "pip" else args[0]
        source = f"the package index {self._settings.index_url or 'PyPI'}"
        await self._run(emit, f"uv {step}", command, source)

    async def _conda(self, emit: Emit, request: dict[str, object]) -> None:
        """A conda step, in a child process: rattler never runs in the server or worker."""
        command = [sys.executable, "-m", "app.builders.conda_runner"]
        channels = " ".join(self._settings.conda_channels)
        where = (
            f"the conda channel{'s' if len(self._settings.conda_channels) > 1 else ''} {channels}"
        )
        await self._run(emit, "conda install", command, where, json.dumps(request).encode())

    async def _run(
        self, emit: Emit, what: str, command: list[str], index: str, data: bytes = b""
    ) -> None:
        """Run a tool, its output streamed to the log; BuildFailed naming the cause."""
        # A neutral working directory: uv looks for a pyproject.toml from there upwards, and
        # the server's own directory (envyard's checkout, say) is some project's.
        with tempfile.TemporaryDirectory(prefix="envyard-build-") as workdir:
            proc = await asyncio.create_subprocess_exec(
                *command,
                # Standard input only for what reads it: writing to a tool that already
                # exited fails ("the handler is closed"), and a quick one may exit first.
                stdin=asyncio.subprocess.PIPE if data else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self._env(),
                cwd=workdir,
            )
            last = tail()
            try:
                assert proc.stdout is not None
                if proc.stdin is not None:
                    # A child that died before reading says why in its output and exit code.
                    with contextlib.suppress(OSError, RuntimeError):
                        proc.stdin.write(data)
                        await proc.stdin.drain()
                        proc.stdin.close()
                lines = LineSplitter()
                while chunk := await proc.stdout.read(65536):
                    await relay(lines.feed(chunk), emit, last)
                await relay(lines.close(), emit, last)
                code = await proc.wait()
            finally:
                if proc.returncode is None:  # cancelled or timed out: stop it with us
                    proc.kill()
                    await proc.wait()
        if code != 0:
            cause = explain_failure(list(last), index)
            if cause is None:
                raise BuildFailed(f"{what} failed (exit code {code}); see the lines above.")
            raise BuildFailed(f"{what} failed: {cause}.")


async def _quiet(line: str) -> None:
    """For steps whose output is not the build log's business."""


def _pins(packages: Sequence[Package]) -> str:
    return "".join(f"{p.name}=={p.version}\n" for p in packages if p.manager is PackageManager.PIP)


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
