"""The steps of a build, the same in both builders.

A build makes or updates one environment at a prefix. A conda environment's Python comes
from the conda solve (the conda runner, with the previous version's packages locked); its pip
libraries are then installed with uv, the previous version's pins first where the prefix
does not hold them yet, with what conda installed as constraints: pip never replaces a conda
package. Any other environment is a virtualenv, built by one uv resolution of its pip
libraries with the packages it starts from as preferences (`_make_pip`). Last, what the
environment holds is recorded and a lock file of it written.

The steps run on a `Host`: this machine for the local builder, the build container for the
Docker builder. Commands are argument lists and the user's libraries go into files as data:
nothing reaches a shell.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from packaging.utils import canonicalize_name, canonicalize_version

from app.builders import BuildFailed, BuildRequest, BuildResult, Emit, Exact, inventory
from app.builders.lock import lock_request, pip_lock_text
from app.builders.output import count, explain_failure
from app.builders.process import ChildFailed
from app.builders.venvs import VenvTemplates
from app.domain.requirements import PackageManager
from app.domain.versions import Package, pip_replacing_conda
from app.settings import Settings


class Host(Protocol):
    """Where a build's commands run and its files are."""

    async def run(self, command: Sequence[str], emit: Emit) -> tuple[int, deque[str]]:
        """Run a tool to its end, its output (both streams, in order) sent to `emit` line by
        line; its exit code and last lines."""
        ...

    async def output(self, command: Sequence[str]) -> str:
        """The standard output of a short command; ChildFailed saying why it failed."""
        ...

    async def put(self, files: Mapping[str, bytes]) -> None:
        """Write files (absolute path -> content), their directories made as needed."""
        ...

    async def get(self, path: str) -> str:
        """A text file's content."""
        ...


@dataclass(frozen=True, slots=True)
class Tools:
    """Where a host's build tools and this build's own files are."""

    uv: str  # uv's executable
    conda: tuple[str, ...]  # the conda runner; a request file's path is appended
    conda_cache: str  # the conda runner's caches (repodata/, pkgs/)
    work: str  # this build's own files (requests, requirements, constraints)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one build makes, decided by its builder."""

    prefix: str  # the environment: made, or updated in place when it exists
    channels: Sequence[str]  # conda channels; empty for an environment without conda
    interpreter: str | None = None  # a new virtualenv's Python (without conda)
    locked: str | None = None  # the prefix whose conda packages the solve keeps
    pins: Sequence[Package] = ()  # pip packages installed first, exactly, without deps

    @property
    def conda(self) -> bool:
        return bool(self.channels)

    @property
    def python(self) -> str:
        return f"{self.prefix}/bin/python"


class Steps:
    """One build's steps on one host."""

    def __init__(
        self,
        settings: Settings,
        host: Host,
        tools: Tools,
        emit: Emit,
        venvs: VenvTemplates | None = None,
    ) -> None:
        self._settings = settings
        self._host = host
        self._tools = tools
        self._emit = emit
        self._venvs = venvs  # a local host's new virtualenvs, copied from uv's (venvs.py)
        self._writing: list[asyncio.Future[None]] = []  # their files still being written

    async def make(self, request: BuildRequest, plan: Plan, *, exact: bool = False) -> BuildResult:
        """Build `request` into the plan's prefix. Without conda, `_make_pip`: one uv
        resolution of the pip requirements and the packages the environment starts from
        (the previous version's pins, or what the prefix holds), installed from its
        pylock.toml, which also gives the lock file's URLs (version 1 installs its
        requirements directly, resolved alike); with conda (or `exact` pins, restoring a
        lock file) the pins are installed without dependencies, then the requirements."""
        try:
            if not plan.conda and not exact:
                return await self._make_pip(request, plan)
            return await self._make_prefix(request, plan)
        finally:  # a build never ends while its files are written, cancelled or not
            await _settled(self._writing)

    async def _make_prefix(self, request: BuildRequest, plan: Plan) -> BuildResult:
        """`make` with conda, or restoring exact pins."""
        emit, work, python = self._emit, self._tools.work, plan.python
        if plan.conda:
            await emit(
                f"Creating a conda environment with Python {request.python_version} for "
                f"version {request.number}"
                if plan.locked != plan.prefix
                else f"Updating the conda environment for version {request.number}"
            )
            await self._conda_install(request, plan)
        elif plan.interpreter is not None:
            await emit(
                f"Creating a Python {request.python_version} environment for version "
                f"{request.number}"
            )
            await self._venv(plan.interpreter, plan.prefix)
        # pip never replaces what conda installed: its distributions are pinned as constraints,
        # and a pip library asking for another version of one is refused, naming it.
        # A virtualenv uv just made holds nothing yet.
        fresh = not plan.conda and plan.interpreter is not None
        found = (
            inventory.Survey([], [])
            if fresh
            else await inventory.survey_built(self._host, plan.prefix)
        )
        conda_owned = found.conda_distributions
        self._refuse_overlaps(conda_owned, [*found.packages, *plan.pins])
        clashes = pip_replacing_conda(request.pip_requirements, conda_owned)
        if clashes:
            raise BuildFailed(
                f"{'; '.join(clashes)}: pip never replaces a conda package; change the conda "
                "library instead"
            )
        pip_args = ["--python", python]
        files: dict[str, bytes] = {}
        if conda_owned:
            files[f"{work}/conda-owned.txt"] = pins(conda_owned).encode()
            pip_args += ["--constraint", f"{work}/conda-owned.txt"]
        previous = [p for p in plan.pins if p.manager is PackageManager.PIP]
        if previous:
            files[f"{work}/previous.txt"] = pins(previous).encode()
        if request.pip_requirements:
            lines = "".join(f"{line}\n" for line in request.pip_requirements)
            files[f"{work}/requirements.txt"] = lines.encode()
        if files:
            await self._host.put(files)
        if previous:
            await emit(
                f"Starting from the {count(len(previous), 'pip package')} of the previous version"
            )
            await self._uv(
                "pip", "install", *pip_args, "--no-deps", "-r", f"{work}/previous.txt", index=True
            )
        if request.pip_requirements:
            await emit(
                f"Installing {count(len(request.pip_requirements), 'pip library', 'pip libraries')}"
            )
            await self._uv(
                "pip", "install", *pip_args, "-r", f"{work}/requirements.txt", index=True
            )
        await self._written()
        packages = (await inventory.survey_built(self._host, plan.prefix)).packages
        await self._host.put({f"{work}/installed.txt": pins(packages).encode()})
        try:
            lockfile = await self._lockfile(plan, packages)
        except ChildFailed as exc:  # the environment is built: it is not lost for its lock
            await emit(f"No lock file written ({exc}); it is made when first asked for")
            lockfile = ""
        return BuildResult(python, packages, lockfile=lockfile, channels=list(plan.channels))

    async def restore(self, request: BuildRequest, plan: Plan, exact: Exact) -> BuildResult:
        """A new environment holding exactly `exact` (a plan whose pins are its pip packages):
        conda records solved by name, version and build, pip packages without dependencies;
        BuildFailed when the result is not what was recorded."""
        await self._emit(
            f"Rebuilding exactly the {count(len(exact.packages), 'package')} of the version's "
            "lock file"
        )
        exact_request = replace(
            request, conda_requirements=exact.conda_specs, pip_requirements=(), previous=None
        )
        result = await self.make(exact_request, plan, exact=True)
        have = {p.key: p.version for p in result.packages}
        want = {p.key: p.version for p in exact.packages}
        if have != want:
            differences = sorted(
                f"{name} {want.get((manager, name), 'absent')} recorded, "
                f"{have.get((manager, name), 'absent')} rebuilt"
                for manager, name in {*have, *want}
                if have.get((manager, name)) != want.get((manager, name))
            )
            raise BuildFailed(
                "The rebuilt environment differs from the lock file: " + "; ".join(differences)
            )
        return result

    @staticmethod
    def _refuse_overlaps(conda_owned: Sequence[Package], packages: Sequence[Package]) -> None:
        """A conda library now provides a distribution that pip installed before (still in
        the prefix updated in place, or about to be reinstalled into a new one): the two
        managers never own one package, in either builder."""
        owned = {p.key[1]: p for p in conda_owned}
        overlaps = sorted(
            {
                f"conda's {owned[p.key[1]].name} {owned[p.key[1]].version} would replace "
                f"{p.name} {p.version}, which pip installed"
                for p in packages
                if p.manager is PackageManager.PIP
                and p.key[1] in owned
                and p.version != owned[p.key[1]].version
            }
        )
        if overlaps:
            raise BuildFailed(
                f"{'; '.join(overlaps)}: a package is either conda's or pip's; drop the pip "
                "library or the conda one"
            )

    # -- conda ---------------------------------------------------------------------------

    async def _conda_install(self, request: BuildRequest, plan: Plan) -> None:
        """Solve and link the conda libraries (and Python itself) into the prefix, keeping the
        packages of the prefix `plan.locked` where the solve allows."""
        path = f"{self._tools.work}/conda-install.json"
        conda_request = {
            "action": "install",
            "prefix": plan.prefix,
            "channels": list(plan.channels),
            "specs": [f"python {request.python_version}.*", *request.conda_requirements],
            "cache_dir": self._tools.conda_cache,
            "previous_prefix": plan.locked,
        }
        await self._host.put({path: json.dumps(conda_request).encode()})
        await self._step("conda install", [*self._tools.conda, path], self._channels())
        if not await self._exists(plan.python):
            raise BuildFailed("The conda environment has no bin/python.")

    async def _exists(self, path: str) -> bool:
        try:
            await self._host.output([path, "-I", "-c", ""])
        except ChildFailed:
            return False
        return True

    def _channels(self) -> str:
        channels = self._settings.conda_channels
        return f"the conda channel{'s' if len(channels) > 1 else ''} {' '.join(channels)}"

    # -- uv ------------------------------------------------------------------------------

    async def _venv(self, interpreter: str, prefix: str) -> None:
        """A new virtualenv: a copy of uv's for that interpreter where the host keeps one,
        else `uv venv`. The build's own files may be in the prefix already (the local
        builder keeps them there)."""
        writing = None
        if self._venvs is not None:
            try:
                writing = await self._venvs.make(interpreter, prefix)
            except (OSError, ChildFailed) as exc:  # uv itself says what is wrong, if anything
                await self._emit(f"No virtualenv template ({exc}): running uv venv")
        if writing is not None:
            self._writing.append(writing)
            await self._emit(
                f"Created the virtual environment at {prefix} (a copy of the one "
                f"`uv venv --python {interpreter}` made)"
            )
        else:
            made = ("venv", "--no-project", "--allow-existing", "--python", interpreter, prefix)
            await self._uv(*made)

    async def _written(self) -> None:
        """Wait for the files of new virtualenvs still being written; BuildFailed if one
        could not be. A cancellation leaves the writing alone (a thread cannot be stopped):
        `make` waits for it before it ends."""
        shielded = [asyncio.shield(w) for w in self._writing]
        for result in await asyncio.gather(*shielded, return_exceptions=True):
            if isinstance(result, BaseException):
                raise BuildFailed(f"Writing the new virtualenv's files failed: {result}")

    def _index_args(self) -> list[str]:
        args: list[str] = []
        if self._settings.index_url:
            args += ["--index-url", self._settings.index_url]
        for url in self._settings.extra_index_urls:
            args += ["--extra-index-url", url]
        return args

    async def _uv(self, *args: str, index: bool = False, held: bool = False) -> None:
        """Run uv, its command and output in the log; `held`: its output (a resolution run
        beside an install says little, errors mostly) comes once it ends, together, not
        between the install's lines."""
        command = [self._tools.uv, *args, "--no-config", "--no-progress", "--color", "never"]
        if index:
            command += self._index_args()
        await self._emit("$ uv " + " ".join(args))
        step = " ".join(args[:2]) if args[0] == "pip" else args[0]
        source = f"the package index {self._settings.index_url or 'PyPI'}"
        if not held:
            await self._step(f"uv {step}", command, source)
            return
        said: list[str] = []

        async def hold(line: str) -> None:
            said.append(line)

        try:
            await run_step(self._host, hold, f"uv {step}", command, source)
        finally:
            if said and not _cancelling():
                await self._emit(f"uv {step} said:")
                for line in said:
                    await self._emit(line)

    async def _step(self, what: str, command: list[str], source: str) -> None:
        await run_step(self._host, self._emit, what, command, source)

    async def _make_pip(self, request: BuildRequest, plan: Plan) -> BuildResult:
        """A virtualenv's version by one uv resolution: of the pip requirements with the
        packages the environment starts from (the previous version's, as pins for a new
        virtualenv, or what the virtualenv updated in place holds), named so that they stay,
        at their versions where the resolution allows (they are its preferences). uv writes
        the resolution as a pylock.toml, whose files the lock file names. Beside it, the
        requirements are installed with those packages kept exactly, and the resolution
        installed only where that differs (`_keeping`). Version 1, with nothing to keep,
        installs its requirements straight away, the resolution beside it (`straight`): it
        gives the lock file the URLs of the files of the versions installed, which it
        resolves alike."""
        fresh = plan.interpreter is not None
        if fresh:
            await self._emit(
                f"Creating a Python {request.python_version} environment for version "
                f"{request.number}"
            )
            found = inventory.Survey([], [])
        else:
            found = await inventory.survey_built(self._host, plan.prefix)
        starting = [p for p in [*plan.pins, *found.packages] if p.manager is PackageManager.PIP]
        names = sorted({str(canonicalize_name(p.name)) for p in starting})
        lines = [*request.pip_requirements, *names]
        work = self._tools.work
        resolved = f"{work}/resolved/pylock.toml"  # uv wants this file name
        requirements = f"{work}/requirements.txt"
        kept = f"{work}/kept.txt"
        # A new virtualenv with nothing to keep (version 1): the install resolves the
        # requirements itself, as the resolution does (the same index and cache), so it
        # need not wait for it; the resolution, run beside, only gives the lock file URLs.
        straight = fresh and not starting
        venv: Callable[[], Coroutine[Any, Any, None]] | None = None
        if fresh:
            assert plan.interpreter is not None
            venv = partial(self._venv, plan.interpreter, plan.prefix)
        resolve: Callable[[], Coroutine[Any, Any, None]] | None = None
        if lines:
            files = {requirements: "".join(f"{line}\n" for line in lines).encode()}
            if starting:
                # an existing output file is what `uv pip compile` keeps where it can
                files[resolved] = preferences(starting).encode()
                files[kept] = pins(starting).encode()  # the install beside it keeps them
            await self._host.put(files)
            libraries = count(len(request.pip_requirements), "pip library", "pip libraries")
            await self._emit(
                f"Resolving {libraries} with the {count(len(names), 'pip package')} of the "
                "previous version"
                if names
                else f"Resolving {libraries}"
            )
            target = plan.interpreter if fresh else plan.python
            assert target is not None
            compile_ = (
                "pip", "compile", "--quiet", "--format", "pylock.toml", "--python", target,
                "-o", resolved, requirements,
            )  # fmt: skip
            resolve = partial(self._uv, *compile_, index=True, held=True)
        install = partial(
            self._uv, "pip", "install", "--python", plan.python, "-r",
            requirements if straight else resolved, index=True,
        )  # fmt: skip
        resolved_ok = True
        survey: inventory.Survey | None = None
        resolution: dict[str, Any] | None = None
        if straight:
            if venv is not None:  # alone: beside the resolution it takes longer
                await venv()
            if resolve is not None:  # there are libraries to install
                resolved_ok = await self._beside(resolve, install)
        elif resolve is not None and starting:
            keeping = partial(self._uv, "pip", "install", "--python", plan.python, "-r",
                              requirements, "--constraint", kept, index=True)  # fmt: skip
            exact = partial(install, "--exact")
            survey, resolution = await self._keeping(
                plan.prefix, resolved, starting, resolve, venv, keeping, exact
            )
        elif resolve is not None:  # updated in place, holding no pip package yet
            await resolve()
            await install()
        urls: dict[str, str] = {}
        if lines and resolved_ok:
            try:
                if resolution is None:
                    resolution = tomllib.loads(await self._host.get(resolved))
                urls = pylock_urls(resolution)
            except (ChildFailed, tomllib.TOMLDecodeError) as exc:  # built: not lost for it
                await self._no_urls(exc)
        await self._written()
        if survey is None:
            survey = await inventory.survey_built(self._host, plan.prefix)
        packages = survey.packages
        pip = [
            (p.name, p.version, urls.get(file_key(p.name, p.version), ""))
            for p in packages
            if p.manager is PackageManager.PIP
        ]
        lockfile = pip_lock_text(pip, self._settings.index_url)
        return BuildResult(plan.python, packages, lockfile=lockfile, channels=[])

    async def _keeping(
        self,
        prefix: str,
        resolved: str,
        starting: Sequence[Package],
        resolve: Callable[[], Coroutine[Any, Any, None]],
        venv: Callable[[], Coroutine[Any, Any, None]] | None,
        keep: Callable[[], Coroutine[Any, Any, None]],
        exact: Callable[[], Coroutine[Any, Any, None]],
    ) -> tuple[inventory.Survey, dict[str, Any]]:
        """A next version's install, beside its resolution (`resolve`): `keep` installs the
        requirements with the packages the environment starts from (`starting`) as
        constraints, their versions exactly, which is what the resolution chooses unless a
        library needs one of them moved. Once both are done, the resolution decides: if it
        moves one of them, or what was installed differs from it otherwise, `exact` installs
        its files (removing what it does not list), saying why; if it moves none and `keep`
        failed, that failure is the build's (the same install would fail again). The
        environment always ends as the resolution says; the common case waits for one uv
        process instead of two in a row. What the environment holds, and the resolution."""
        failed: list[BuildFailed] = []

        async def keeping() -> None:
            if venv is not None:
                await venv()
            await self._emit(
                "Installing them with the previous version's packages at their versions, "
                "beside the resolution"
            )
            try:
                await keep()
            except BuildFailed as exc:  # the resolution decides, once it is done
                failed.append(exc)

        await _all([resolve, keeping])  # a failing resolution fails the build
        try:
            resolution = tomllib.loads(await self._host.get(resolved))
        except (ChildFailed, tomllib.TOMLDecodeError) as exc:  # uv wrote it: never seen
            raise BuildFailed(f"The resolution could not be read: {exc}") from exc
        await self._written()
        moved = [d for d in differences(resolution, starting) if not d.endswith(" added")]
        if moved:
            kept = f" (keeping them failed: {str(failed[0]).rstrip('.')})" if failed else ""
            await self._emit(
                f"The resolution moves packages of the previous version{kept}: "
                f"{'; '.join(moved)}. Installing its versions"
            )
        elif failed:
            raise failed[0]
        else:
            survey = await inventory.survey_built(self._host, prefix)
            other = differences(resolution, survey.packages)
            if not other:
                return survey, resolution
            await self._emit(f"The resolution differs: {'; '.join(other)}. Installing its versions")
        await exact()
        return await inventory.survey_built(self._host, prefix), resolution

    async def _beside(
        self,
        resolve: Callable[[], Coroutine[Any, Any, None]],
        step: Callable[[], Coroutine[Any, Any, None]],
    ) -> bool:
        """Run `step` with `resolve` beside it. A failing step fails the build (and stops
        the resolution); a failing resolution only costs the lock file its URLs: whether it
        succeeded."""
        beside = asyncio.ensure_future(resolve())
        try:
            await step()
        except BaseException:
            beside.cancel()
            await asyncio.gather(beside, return_exceptions=True)
            raise
        try:
            await beside
        except BuildFailed as exc:
            await self._no_urls(exc)
            return False
        return True

    async def _no_urls(self, cause: Exception) -> None:
        await self._emit(f"No file URLs in the lock file ({cause}): the versions only")

    # -- the lock file -------------------------------------------------------------------

    async def _lockfile(self, plan: Plan, packages: list[Package]) -> str:
        """A rattler lock file of exactly `packages`: conda records as linked (when conda was
        used), pip distributions with the URL and hash of their file."""
        pip = [p for p in packages if p.manager is PackageManager.PIP]
        files = await self._pip_files(plan.python, pip)
        found = [(p.name, p.version, files.get(file_key(p.name, p.version), "")) for p in pip]
        if not plan.conda:  # no conda records to read: written here, as rattler would
            return pip_lock_text(found, self._settings.index_url)
        work = self._tools.work
        request = lock_request(
            plan.channels,
            found,
            self._settings.index_url,
            plan.prefix if plan.conda else None,
            f"{work}/envyard.lock",
        )
        await self._host.put({f"{work}/lock.json": json.dumps(request).encode()})
        await self._host.output([*self._tools.conda, f"{work}/lock.json"])
        return await self._host.get(f"{work}/envyard.lock")

    async def _pip_files(self, python: str, pip: list[Package]) -> dict[str, str]:
        """`file_key` -> the URL (with `#sha256=`) of the file the index has for that exact
        version, as uv resolves it; empty where the index does not say."""
        if not pip:
            return {}
        work = self._tools.work
        await self._host.put({f"{work}/pins.txt": pins(pip).encode()})
        command = [
            self._tools.uv, "pip", "compile", "--no-config", "--quiet", "--color", "never",
            "--no-deps", "--format", "pylock.toml", "--python", python,
            *self._index_args(), "-o", f"{work}/pylock.toml", f"{work}/pins.txt",
        ]  # fmt: skip
        try:
            await self._host.output(command)
            lock = tomllib.loads(await self._host.get(f"{work}/pylock.toml"))
        except (ChildFailed, tomllib.TOMLDecodeError):  # the index is gone since, say
            return {}
        return pylock_urls(lock)


def file_key(name: str, version: str) -> str:
    """A distribution's key among a lock's files: its name and version, both canonical."""
    return f"{canonicalize_name(name)}=={canonicalize_version(version)}"


def pylock_urls(lock: dict[str, Any]) -> dict[str, str]:
    """`file_key` of each package -> the URL (with `#sha256=`) of each package's file in
    a pylock.toml that uv wrote for one interpreter (its wheels are those that interpreter
    can install, best first; the sdist when there is none)."""
    found: dict[str, str] = {}
    for package in lock.get("packages", []):
        for wheel in package.get("wheels", []) or [package.get("sdist", {})]:
            if wheel.get("url"):
                digest = wheel.get("hashes", {}).get("sha256")
                suffix = f"#sha256={digest}" if digest else ""
                found[file_key(package["name"], package.get("version", ""))] = wheel["url"] + suffix
                break
    return found


def differences(resolution: dict[str, Any], packages: Sequence[Package]) -> list[str]:
    """How the pip packages installed differ from a pylock.toml's: `name a -> b`, `name b
    added`, `name a removed`; empty when they are the same versions."""
    want = {
        str(canonicalize_name(p["name"])): str(p.get("version", ""))
        for p in resolution.get("packages", [])
    }
    have = {
        str(canonicalize_name(p.name)): p.version
        for p in packages
        if p.manager is PackageManager.PIP
    }
    found = []
    for name in sorted({*want, *have}):
        if name not in have:
            found.append(f"{name} {want[name]} added")
        elif name not in want:
            found.append(f"{name} {have[name]} removed")
        elif canonicalize_version(have[name]) != canonicalize_version(want[name]):
            found.append(f"{name} {have[name]} -> {want[name]}")
    return found


def preferences(packages: Sequence[Package]) -> str:
    """A pylock.toml naming the pip packages' versions (no files): what `uv pip compile`
    prefers when it is its output file."""
    lines = ['lock-version = "1.0"', 'created-by = "envyard"']
    for p in packages:
        if p.manager is PackageManager.PIP:
            lines += ["", "[[packages]]", f"name = {json.dumps(p.name)}"]
            lines.append(f"version = {json.dumps(p.version)}")
    return "\n".join(lines) + "\n"


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _settled(writing: Sequence[asyncio.Future[None]]) -> None:
    """Wait until none of these is running, even if cancelled meanwhile (the cancellation
    is raised once they are done); their own failures are not raised here."""
    cancelled = False
    while pending := [w for w in writing if not w.done()]:
        try:
            await asyncio.wait([asyncio.shield(w) for w in pending])
        except asyncio.CancelledError:
            cancelled = True
    for done in writing:
        if not done.cancelled():
            done.exception()  # retrieved: never reported as unhandled
    if cancelled:
        raise asyncio.CancelledError


async def _all(steps: Sequence[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """Run the steps side by side; the first to fail stops the others and is raised as is."""
    tasks = [asyncio.ensure_future(step()) for step in steps]
    try:
        for done in asyncio.as_completed(tasks):
            await done
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_step(host: Host, emit: Emit, what: str, command: list[str], source: str) -> None:
    """Run one step, its output in the log; BuildFailed naming the cause (`source`: where
    its packages come from)."""
    code, last = await host.run(command, emit)
    if code != 0:
        cause = explain_failure(list(last), source)
        if cause is None:
            raise BuildFailed(f"{what} failed (exit code {code}); see the lines above.")
        raise BuildFailed(f"{what} failed: {cause}.")


def pins(packages: Sequence[Package]) -> str:
    """`name==version` lines of the pip packages."""
    return "".join(f"{p.name}=={p.version}\n" for p in packages if p.manager is PackageManager.PIP)
