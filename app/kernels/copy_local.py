"""Copy to Local: an envyard version recreated on this machine from its lock file.

Exactly the version's pip packages (`name==version`, without dependencies; with the file's
sha256 when the lock file has them all and was made for this machine's platform) go in with
uv; its conda packages (when it has some) are solved exactly (`name version build`) against
the conda channels and linked by the conda runner first, Python included; ipykernel is added
last, constrained to leave every recorded pip package and every Python distribution conda
linked as it is (refused when it would replace one of conda's). The result is checked
against the record before the kernelspec is registered. Each copy is made in a new
directory: the caller switches the kernelspec to it, then removes the copy it replaces.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from uv import find_uv_bin

from app.builders import BuildFailed, Emit, inventory
from app.builders.local import LocalHost
from app.builders.process import ChildFailed, run_child
from app.builders.steps import run_step
from app.domain.requirements import PackageManager
from app.domain.versions import Package
from app.kernels.api import KernelError
from app.settings import conda_channel_url

RUNNER = (sys.executable, "-m", "app.builders.conda_runner")
# The packages of a lock file as the conda runner's `read` says them (one JSON line), then
# its platforms and this machine's (another), in one child process: rattler is never loaded
# here.
READ_LOCK = """\
import json, sys
from pathlib import Path
from app.builders.conda_runner import read
read({"action": "read", "lock": sys.argv[1]})
from rattler import LockFile, Platform
environment = LockFile.from_path(Path(sys.argv[1])).default_environment()
print(json.dumps({"platforms": sorted(str(p) for p in environment.platforms()),
                  "local": str(Platform.current())}))
"""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a version holds, as its lock file says."""

    channels: list[str] = field(default_factory=list)
    conda: list[dict[str, str]] = field(default_factory=list)  # name, version, build, url
    pypi: list[dict[str, str]] = field(default_factory=list)  # name, version, url
    platforms: list[str] = field(default_factory=list)  # the lock file's (conda's names)
    local_platform: str = ""  # this machine's, in the same names


async def read_lock(text: str) -> Recorded:
    """Parse a rattler lock file (rattler runs in a child process, as in the builders)."""
    with tempfile.TemporaryDirectory(prefix="envyard-lock-") as work:
        path = Path(work) / "envyard.lock"
        path.write_text(text)
        try:
            out = await run_child([sys.executable, "-I", "-c", READ_LOCK, str(path)], cwd=work)
        except ChildFailed as exc:
            said = str(exc).partition("): ")[2] or str(exc)  # its last line
            raise KernelError(f"the version's lock file cannot be read: {said}") from None
    try:
        *_, packages, platforms = (json.loads(line) for line in out.decode().splitlines()[-2:])
        return Recorded(
            list(packages["channels"]),
            list(packages["conda"]),
            list(packages["pypi"]),
            list(platforms["platforms"]),
            str(platforms["local"]),
        )
    except (ValueError, TypeError, KeyError):
        raise KernelError(
            f"the version's lock file was read without a usable answer: {out[-300:]!r}"
        ) from None


def _sha256(url: str) -> str | None:
    _, _, fragment = url.partition("#")
    return fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None


def hash_check(recorded: Recorded, verify: bool) -> tuple[bool, str]:
    """(whether uv checks the pip files against their recorded sha256, what to say)."""
    if not verify:
        return False, "files not checked against their recorded sha256 (--no-verify-hashes)"
    if not all(_sha256(p["url"]) for p in recorded.pypi):
        return False, "files not checked: the lock file lacks the sha256 of some of them"
    platforms = [p for p in recorded.platforms if p != "noarch"]
    if platforms != [recorded.local_platform]:
        return False, (
            f"files not checked against their recorded sha256: the lock file is for "
            f"{', '.join(platforms) or 'no platform'} and this machine is "
            f"{recorded.local_platform}, whose wheels of the same versions are other files"
        )
    return True, "files checked against their recorded sha256"


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the packages come from on this machine."""

    index_url: str | None
    extra_index_urls: Sequence[str]
    channels: Sequence[str]  # empty: the version's own channels
    verify_hashes: bool = True  # the recorded sha256 of each pip file, when all are known

    def index_args(self) -> list[str]:
        args = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        return args

    def index(self) -> str:
        return f"the package index {self.index_url or 'PyPI'}"


def client_env() -> dict[str, str]:
    """The user's environment (their uv settings apply), never downloading a Python."""
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.setdefault("NO_COLOR", "1")
    return env


def new_prefix(environments: Path, name: str) -> Path:
    """A directory of its own for a new copy (never the one a working kernel uses)."""
    try:
        environments.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=environments))
    except OSError as exc:
        raise KernelError(f"no directory for the copy under {environments}: {exc}") from None


# What a copy needs at least (a Python with ipykernel and what it needs), when there is no
# previous copy to measure.
MIN_FREE_BYTES = 200 * 1024 * 1024


def check_space(where: Path, previous: Path | None) -> None:
    """Refuse a copy that the file system holding `where` (the new copy's directory) has no
    room for: about the size of the previous copy, which stays until the new one works."""
    from app.builders.local import disk_bytes

    needed = max(MIN_FREE_BYTES, disk_bytes(previous) if previous is not None else 0)
    try:
        free = shutil.disk_usage(where).free
    except OSError as exc:
        raise KernelError(f"the free space at {where} cannot be told: {exc}") from None
    if free < needed:
        raise KernelError(
            f"not enough free space for the copy at {where}: {free // 2**20} MiB free, about "
            f"{needed // 2**20} MiB needed"
            + (" (the old copy stays until the new one works)" if previous is not None else "")
        )


async def recreate(
    recorded: Recorded,
    python_version: str,
    prefix: Path,
    sources: Sources,
    cache_dir: Path,
    emit: Emit,
) -> None:
    """Make the new, empty environment at `prefix` hold exactly `recorded`, plus ipykernel."""
    uv = find_uv_bin()
    with tempfile.TemporaryDirectory(prefix="envyard-copy-") as work_dir:
        work = Path(work_dir)
        host = LocalHost(client_env(), work_dir)
        python = str(prefix / "bin" / "python")
        if recorded.conda:
            channels = [conda_channel_url(c) for c in sources.channels] or recorded.channels
            request = {
                "action": "install",
                "prefix": str(prefix),
                "channels": channels,
                "specs": [f"{p['name']} {p['version']} {p['build']}" for p in recorded.conda],
                "cache_dir": str(cache_dir / "conda"),
                "previous_prefix": None,
            }
            (work / "conda.json").write_text(json.dumps(request))
            await emit(f"Linking {len(recorded.conda)} conda packages")
            await run_step(
                host,
                emit,
                "conda install",
                [*RUNNER, str(work / "conda.json")],
                f"the conda channels {' '.join(channels)}",
            )
        else:
            await emit(f"Creating a Python {python_version} environment at {prefix}")
            await run_step(
                host,
                emit,
                "uv venv",
                [uv, "venv", "--no-project", "--python", python_version, str(prefix)],
                "this machine's Pythons",
            )
        if recorded.pypi:
            hashed, said = hash_check(recorded, sources.verify_hashes)
            hashes = [_sha256(p["url"]) for p in recorded.pypi]
            lines = [
                f"{p['name']}=={p['version']}" + (f" --hash=sha256:{h}" if hashed else "")
                for p, h in zip(recorded.pypi, hashes, strict=True)
            ]
            (work / "exact.txt").write_text("\n".join(lines) + "\n")
            await emit(f"Installing the version's {len(recorded.pypi)} pip packages: {said}")
            await _install_exactly(
                host,
                emit,
                [
                    uv, "pip", "install", "--python", python, "--no-deps",
                    *(["--require-hashes"] if hashed else []),
                    *sources.index_args(), "-r", str(work / "exact.txt"),
                ],
                sources,
            )  # fmt: skip
        conda_owned = (await inventory.survey(host, str(prefix))).conda_distributions
        await _add_ipykernel(host, emit, work, python, recorded, conda_owned, sources)
        survey = await inventory.survey(host, str(prefix))
    have = {p.key: p.version for p in survey.packages}
    expected = [
        *(Package(p["name"], p["version"], PackageManager.CONDA) for p in recorded.conda),
        *(Package(p["name"], p["version"], PackageManager.PIP) for p in recorded.pypi),
    ]
    missing = [
        f"{p.manager.value.lower()} {p.name} {p.version}"
        for p in expected
        if have.get(p.key) != p.version
    ]
    replaced = sorted(
        f"{p.name} {p.version}" for p in set(conda_owned) - set(survey.conda_distributions)
    )
    if replaced:
        missing.append(f"conda's Python distributions {', '.join(replaced)}")
    if missing:
        raise BuildFailed("the copy does not hold what the version recorded: " + ", ".join(missing))


async def _install_exactly(
    host: LocalHost, emit: Emit, command: list[str], sources: Sources
) -> None:
    """The version's pip files; a file whose sha256 is not the recorded one said as such."""
    mismatches: list[str] = []

    async def watch(line: str) -> None:
        if "Hash mismatch for" in line:
            mismatches.append(line.strip().removeprefix("cause:").strip())
        await emit(line)

    try:
        await run_step(host, watch, "uv pip install", command, sources.index())
    except BuildFailed:
        if not mismatches:
            raise
        raise BuildFailed(
            f"uv pip install failed: {mismatches[0]}: {sources.index()} serves other files "
            "than the ones the version recorded (--no-verify-hashes takes them unchecked)"
        ) from None


async def _add_ipykernel(
    host: LocalHost,
    emit: Emit,
    work: Path,
    python: str,
    recorded: Recorded,
    conda_owned: Sequence[Package],
    sources: Sources,
) -> None:
    """ipykernel and what it needs, constrained to the version's pip packages and the
    Python distributions conda linked, as they are: refused when it would replace one of
    conda's (uv would uninstall conda's files under conda's records)."""
    uv = find_uv_bin()
    pins = [f"{p['name']}=={p['version']}" for p in recorded.pypi]
    conda_pins = [f"{p.name}=={p.version}" for p in conda_owned]
    (work / "pins.txt").write_text("".join(f"{line}\n" for line in pins))
    (work / "constraints.txt").write_text("".join(f"{line}\n" for line in pins + conda_pins))
    install = [uv, "pip", "install", "--python", python, *sources.index_args(), "ipykernel"]
    await emit(
        "Installing ipykernel, leaving the version's packages"
        + (" and conda's Python distributions" if conda_owned else "")
        + " as they are"
    )
    try:
        await run_step(
            host,
            emit,
            "uv pip install ipykernel",
            [*install, "--constraint", str(work / "constraints.txt")],
            sources.index(),
        )
    except BuildFailed:
        if not conda_owned:
            raise
        clash = await _conda_replaced(host, [*install, "--dry-run"], work, conda_owned)
        if clash:
            raise BuildFailed(
                f"ipykernel needs {', '.join(clash)} other than conda's: refused, since it "
                "would replace conda's files (add ipykernel to the environment's conda "
                "libraries instead)"
            ) from None
        raise


async def _conda_replaced(
    host: LocalHost, dry_run: list[str], work: Path, conda_owned: Sequence[Package]
) -> list[str]:
    """Which of conda's distributions ipykernel would replace, constrained to the version's
    pip packages only (uv's dry run: ` - name==version` lines are removals)."""
    try:
        said = await host.output([*dry_run, "--constraint", str(work / "pins.txt")])
    except (BuildFailed, OSError):
        return []
    owned = {canonicalize_name(p.name): p for p in conda_owned}
    clash = []
    for line in said.splitlines():
        if line.startswith(" - ") and "==" in line:
            name = canonicalize_name(line[3:].split("==")[0].strip())
            if name in owned:
                clash.append(f"{owned[name].name} (conda's is {owned[name].version})")
    return clash
