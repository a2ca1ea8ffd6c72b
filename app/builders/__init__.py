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
class Stored:
    """A successful version's built files, as the retention policy names them."""

    location: str
    organization: str
    short_name: str
    number: int
    size_bytes: int | None = None  # as recorded when it was built


@dataclass(frozen=True, slots=True)
class Exact:
    """Exactly the packages a version recorded (its lock file's records): a restore makes a
    new environment holding these and nothing else, without resolving anything."""

    packages: Sequence[Package]  # conda ones with their build string

    @property
    def conda_specs(self) -> list[str]:
        return [f"{p.name} {p.version} {p.build}" for p in self.packages if p.build]


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
    # A restore: a new environment from the base holding exactly these packages (a revert
    # to an archived version); the libraries and `previous` are then not used.
    exact: Exact | None = None


@dataclass(frozen=True, slots=True)
class BuildResult:
    location: str
    packages: list[Package] = field(default_factory=list)
    lockfile: str = ""  # a rattler lock file of exactly what was installed
    channels: list[str] = field(default_factory=list)  # the conda channels, if conda was used
    # What this version adds on disk (or in image layers); None: `Builder.measure` tells it
    # once the build is recorded (walking a prefix of thousands of files takes 100 ms+).
    size_bytes: int | None = None
    restored_from: int | None = None  # the archived version rebuilt from its lock file


class Builder(Protocol):
    kind: str

    async def base_environments(self) -> list[BaseEnvironment]: ...

    async def build(self, request: BuildRequest, emit: Emit) -> BuildResult: ...

    async def revert(self, request: BuildRequest, target: Built, emit: Emit) -> BuildResult:
        """A new version identical to `target`, reusing what was built."""
        ...

    async def measure(self, location: str) -> int | None:
        """The bytes a version built at `location` adds, when its build left it unsaid
        (BuildResult.size_bytes None); None when that cannot be told."""
        ...

    async def discard(self, location: str) -> None:
        """Remove what a failed or deleted version left behind."""
        ...

    async def archive(self, stored: Stored) -> int | None:
        """Remove a successful version's built files (the retention policy); the bytes it
        freed, None when that cannot be told. Removing what is already gone is no error."""
        ...

    async def forget(self, archived: Sequence[Stored]) -> int:
        """Remove what this host still holds of archived versions (an image pulled here, a
        prefix left by a failed removal); returns how many things were removed."""
        ...

    async def sweep(self) -> list[str]:
        """Remove build tooling that older envyard versions left (`envyard gc`); what it
        removed."""
        ...

    async def reconcile(self, is_building: IsBuilding) -> int:
        """Remove what builds no longer running left behind (their worker was killed);
        returns how many things were removed. Workers call it at start and periodically."""
        ...

    async def aclose(self) -> None: ...
