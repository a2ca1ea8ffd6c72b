"""Builders turn a version's definition into a usable environment.

The local builder makes virtual environments with uv on this host; a Docker builder makes
images. Both start version N+1 from version N and record what ends up installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.domain.environments import BaseEnvironment
from app.domain.versions import Package

Emit = Callable[[str], Awaitable[None]]
# Asks the database whether an attempt of a version is still BUILDING (attempt None: any).
IsBuilding = Callable[[int, int | None], Awaitable[bool]]


class BuildFailed(Exception):
    """The build ended without a usable environment; the message is its last log line."""


@dataclass(frozen=True, slots=True)
class Built:
    """A version that was built before: where it lives and what it holds."""

    location: str
    packages: Sequence[Package]


@dataclass(frozen=True, slots=True)
class BuildRequest:
    version_id: int
    environment_id: int
    organization: str
    short_name: str
    number: int
    python_version: str
    base_environment: str | None
    pip_requirements: Sequence[str]  # PEP 508 lines rebuilt from parsed libraries
    conda_requirements: Sequence[str]
    previous: Built | None = None  # the version this build starts from
    # Which build of this version number; None when the caller does not say, and then what
    # the build leaves behind is kept while any attempt of the version is building.
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class BuildResult:
    location: str
    packages: list[Package] = field(default_factory=list)
    lockfile: str = ""  # a rattler lock file of exactly what was installed
    channels: list[str] = field(default_factory=list)  # the conda channels, if conda was used


class Builder(Protocol):
    kind: str

    async def base_environments(self) -> list[BaseEnvironment]: ...

    async def build(self, request: BuildRequest, emit: Emit) -> BuildResult: ...

    async def revert(self, request: BuildRequest, target: Built, emit: Emit) -> BuildResult:
        """A new version identical to `target`, reusing what was built."""
        ...

    async def discard(self, location: str) -> None:
        """Remove what a failed or deleted version left behind."""
        ...

    async def reconcile(self, is_building: IsBuilding) -> int:
        """Remove what builds no longer running left behind (their worker was killed);
        returns how many things were removed. Workers call it at start and periodically."""
        ...

    async def aclose(self) -> None: ...
