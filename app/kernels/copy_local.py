"""Copy to Local: an envyard version recreated on this machine from its lock file.

Exactly the version's pip packages (`name==version`, without dependencies, with the file's
sha256 when the lock file has them all) go in with uv; its conda packages (when it has
some) are solved exactly (`name version build`) against the conda channels and linked by
the conda runner first, Python included; ipykernel is added last, constrained to leave
every recorded package as it is. The result is checked against the record before the
kernelspec is registered.
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
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a version holds, as its lock file says."""

    channels: list[str] = field(default_factory=list)
    conda: list[dict[str, str]] = field(default_factory=list)  # name, version, build, url
    pypi: list[dict[str, str]] = field(default_factory=list)  # name, version, url


async def read_lock(text: str) -> Recorded:
    """Parse a rattler lock file (rattler runs in a child process, as in the builders)."""
    with tempfile.TemporaryDirectory(prefix="envyard-lock-") as work:
        path, request = Path(work) / "envyard.lock", Path(work) / "read.json"
        path.write_text(text)
        request.write_text(json.dumps({"action": "read", "lock": str(path)}))
        try:
            out = await run_child([*RUNNER, str(request)], cwd=work)
        except ChildFailed as exc:
            raise KernelError(f"the version's lock file cannot be read: {exc}") from None
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return Recorded(found["channels"], found["conda"], found["pypi"])


def _sha256(url: str) -> str | None:
    _, _, fragment = url.partition("#")
    return fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None


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


async def recreate(
    recorded: Recorded,
    python_version: str,
    prefix: Path,
    sources: Sources,
    cache_dir: Path,
    emit: Emit,
) -> None:
    """Make the environment at `prefix` hold exactly `recorded`, plus ipykernel."""
    uv = find_uv_bin()
    if prefix.exists():
        shutil.rmtree(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
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
        pins = "".join(f"{p['name']}=={p['version']}\n" for p in recorded.pypi)
        (work / "pins.txt").write_text(pins)
        if recorded.pypi:
            hashes = [_sha256(p["url"]) for p in recorded.pypi]
            hashed = sources.verify_hashes and all(hashes)
            lines = [
                f"{p['name']}=={p['version']}" + (f" --hash=sha256:{h}" if hashed else "")
                for p, h in zip(recorded.pypi, hashes, strict=True)
            ]
            (work / "exact.txt").write_text("\n".join(lines) + "\n")
            await emit(
                f"Installing the version's {len(recorded.pypi)} pip packages"
                + (" (files checked against their recorded sha256)" if hashed else "")
            )
            await run_step(
                host,
                emit,
                "uv pip install",
                [
                    uv, "pip", "install", "--python", python, "--no-deps",
                    *(["--require-hashes"] if hashed else []),
                    *sources.index_args(), "-r", str(work / "exact.txt"),
                ],
                sources.index(),
            )  # fmt: skip
        await emit("Installing ipykernel, leaving the version's packages as they are")
        await run_step(
            host,
            emit,
            "uv pip install ipykernel",
            [
                uv, "pip", "install", "--python", python, *sources.index_args(),
                "--constraint", str(work / "pins.txt"), "ipykernel",
            ],
            sources.index(),
        )  # fmt: skip
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
    if missing:
        raise BuildFailed("the copy does not hold what the version recorded: " + ", ".join(missing))
