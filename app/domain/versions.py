"""Versioning rules: numbering, what a build starts from, installed-package diffs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from app.domain.errors import BadUserInput, InvalidState
from app.domain.requirements import PackageManager
from app.domain.statuses import VersionStatus


@dataclass(frozen=True, slots=True)
class VersionRef:
    number: int
    status: VersionStatus


@lru_cache(maxsize=65536)
def canonical(name: str) -> str:
    """canonicalize_name, remembered: comparisons ask for the same few names again and
    again (a comparison with 500 published environments, 50,000 times)."""
    return canonicalize_name(name)


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    manager: PackageManager
    build: str = ""  # a conda package's build string; "" for pip distributions

    @property
    def key(self) -> tuple[PackageManager, str]:
        return self.manager, canonical(self.name)


def recorded_packages(records: Iterable[Mapping[str, str]]) -> list[Package]:
    """Packages as a version records them (Version.packages)."""
    return [
        Package(r["name"], r["version"], PackageManager(r["manager"]), r.get("build", ""))
        for r in records
    ]


def uses_conda(conda_libraries: Sequence[str], previous: Iterable[Package]) -> bool:
    """Whether a version is a conda environment: it asks for conda libraries, or the version
    it starts from had conda packages (a removed library may remain, as the seed says)."""
    return bool(conda_libraries) or any(p.manager is PackageManager.CONDA for p in previous)


def pip_replacing_conda(
    pip_requirements: Sequence[str], conda_distributions: Iterable[Package]
) -> list[str]:
    """The pip requirements that only another version of a distribution conda installed
    would satisfy, each said as a person reads it. pip never replaces a conda package."""
    owned = {p.key[1]: p for p in conda_distributions}
    clashes = []
    for line in pip_requirements:
        requirement = Requirement(line)
        installed = owned.get(canonicalize_name(requirement.name))
        if installed is not None and not requirement.specifier.contains(
            installed.version, prereleases=True
        ):
            clashes.append(
                f"{line} would replace {installed.name} {installed.version}, which conda installed"
            )
    return clashes


def next_version_number(latest: VersionRef | None) -> tuple[int, bool]:
    """(number, reuse): a failed latest version is rebuilt under its own number."""
    if latest is None:
        return 1, False
    if latest.status is VersionStatus.FAILED:
        return latest.number, True
    if not latest.status.finished:
        raise InvalidState("A build of this environment is already queued or running.")
    return latest.number + 1, False


def active_version(versions: Sequence[VersionRef]) -> VersionRef | None:
    """The latest successful version: what activation and submission use."""
    succeeded = [v for v in versions if v.status is VersionStatus.SUCCEEDED]
    return max(succeeded, key=lambda v: v.number, default=None)


def revert_target(versions: Sequence[VersionRef], number: int) -> VersionRef:
    for version in versions:
        if version.number == number:
            if version.status is not VersionStatus.SUCCEEDED:
                raise BadUserInput(
                    "version",
                    f"Version {number} did not build successfully; revert to a version that did.",
                )
            return version
    raise BadUserInput("version", f"This environment has no version {number}.")


class ChangeKind(StrEnum):
    ADDED = "ADDED"
    REMOVED = "REMOVED"
    UPGRADED = "UPGRADED"
    DOWNGRADED = "DOWNGRADED"
    CHANGED = "CHANGED"


@dataclass(frozen=True, slots=True)
class LibraryChange:
    name: str
    manager: PackageManager
    kind: ChangeKind
    before: str | None
    after: str | None


def _compare(before: str, after: str) -> ChangeKind:
    try:
        old, new = Version(before), Version(after)
    except InvalidVersion:
        return ChangeKind.CHANGED
    if new > old:
        return ChangeKind.UPGRADED
    if new < old:
        return ChangeKind.DOWNGRADED
    return ChangeKind.CHANGED  # equal as versions, different as text (1.0 vs 1.0.0)


def check_diffable(number: int, status: VersionStatus) -> None:
    """Only a finished, successful build has a set of installed packages to compare."""
    if status is not VersionStatus.SUCCEEDED:
        state = "is still being built" if not status.finished else "failed to build"
        raise InvalidState(f"Version {number} {state}; compare versions that built successfully.")


def diff_packages(before: Iterable[Package], after: Iterable[Package]) -> list[LibraryChange]:
    """Installed packages of `after` against `before`, sorted by manager and name."""
    old = {p.key: p for p in before}
    new = {p.key: p for p in after}
    changes: list[LibraryChange] = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (k[0].value, k[1])):
        a, b = old.get(key), new.get(key)
        if a is None and b is not None:
            changes.append(LibraryChange(b.name, b.manager, ChangeKind.ADDED, None, b.version))
        elif b is None and a is not None:
            changes.append(LibraryChange(a.name, a.manager, ChangeKind.REMOVED, a.version, None))
        elif a is not None and b is not None and a.version != b.version:
            kind = _compare(a.version, b.version)
            changes.append(LibraryChange(b.name, b.manager, kind, a.version, b.version))
    return changes
