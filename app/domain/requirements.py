"""The library forms the seed allows, for pip and conda alike.

`lib`, `lib=v`, `lib==v`, `lib<=v`, `lib>=v`, each with optional `[extras]`. Anything else
(other operators, URLs, pip options, markers, paths, several lines, empty) is refused, so what
reaches an installer is always one of these shapes, rebuilt from parsed parts.

`lib=v` follows conda: "v or any release in the v series" (pip: `==v.*`); `lib==v` is exact.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from app.domain.errors import BadUserInput

MAX_ENTRY_LENGTH = 200
MAX_ENTRIES = 200


class PackageManager(StrEnum):
    PIP = "PIP"
    CONDA = "CONDA"


_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_ENTRY = re.compile(
    rf"""^(?P<name>{_NAME})
    (?:\[[ ]*(?P<extras>{_NAME}(?:[ ]*,[ ]*{_NAME})*)[ ]*\])?
    (?:[ ]*(?P<op>==|<=|>=|=)[ ]*(?P<version>[A-Za-z0-9][A-Za-z0-9._+!-]*))?$""",
    re.VERBOSE,
)
# conda versions: digits, letters, dots, underscores, '+' and an epoch; no wildcards or ranges.
_CONDA_VERSION = re.compile(r"^(?:[0-9]+!)?[A-Za-z0-9]+(?:[._+][A-Za-z0-9]+)*$")


@dataclass(frozen=True, slots=True)
class Library:
    """One requested library, as entered and as parsed."""

    manager: PackageManager
    entry: str
    name: str
    extras: tuple[str, ...]
    operator: str | None
    version: str | None

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def pip_requirement(self) -> str:
        """The PEP 508 line handed to pip/uv; built from parsed parts, never from raw input."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        if self.operator is None:
            spec = ""
        elif self.operator == "=":
            spec = f"=={self.version}.*"
        else:
            spec = f"{self.operator}{self.version}"
        return f"{self.name}{extras}{spec}"

    def conda_spec(self) -> str:
        """The conda match spec: `=v` keeps conda's meaning, the others are the same text;
        extras become rattler's optional dependencies (`lib>=v[extras=[x,y]]`)."""
        spec = f"{self.operator}{self.version}" if self.operator else ""
        extras = f"[extras=[{','.join(self.extras)}]]" if self.extras else ""
        return f"{self.name}{spec}{extras}"


def parse_library(manager: PackageManager, raw: str) -> Library:
    """Parse one entry; ValueError with a person-readable reason when it is not allowed."""
    entry = raw.strip()
    if not entry:
        raise ValueError("an entry is empty")
    if len(entry) > MAX_ENTRY_LENGTH:
        raise ValueError(f"an entry is longer than {MAX_ENTRY_LENGTH} characters")
    if any(c in entry for c in "\r\n\t\0"):
        raise ValueError("an entry must be a single line")
    match = _ENTRY.fullmatch(entry)
    if match is None:
        raise ValueError(
            "use one of the forms lib, lib=version, lib==version, lib<=version or "
            "lib>=version, optionally with [extras] after the name"
        )
    extras = tuple(e.strip() for e in match["extras"].split(",")) if match["extras"] else ()
    operator, version = match["op"], match["version"]
    if version is not None:
        _check_version(manager, operator, version)
    library = Library(manager, entry, match["name"], extras, operator, version)
    if manager is PackageManager.PIP:
        try:
            Requirement(library.pip_requirement())
        except InvalidRequirement as exc:  # a second opinion from packaging itself
            raise ValueError(f"not a valid requirement ({exc})") from None
    return library


def _check_version(manager: PackageManager, operator: str, version: str) -> None:
    if manager is PackageManager.CONDA:
        if not _CONDA_VERSION.fullmatch(version):
            raise ValueError(f"{version!r} is not a version")
        return
    try:
        Version(version)
    except InvalidVersion:
        raise ValueError(f"{version!r} is not a valid version") from None
    if operator == "=" and "+" in version:
        raise ValueError("lib=version takes a version without a local part (+...)")


def parse_libraries(field: str, manager: PackageManager, raws: Sequence[str]) -> list[Library]:
    """Parse a whole list; BadUserInput names the field and the offending entry."""
    if len(raws) > MAX_ENTRIES:
        raise BadUserInput(field, f"{field}: at most {MAX_ENTRIES} libraries")
    libraries: list[Library] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(raws):
        try:
            library = parse_library(manager, raw)
        except ValueError as exc:
            raise BadUserInput(
                field, f"{field}[{index}] {raw!r}: {exc}.", index=index, entry=raw
            ) from None
        if library.key in seen:
            raise BadUserInput(
                field,
                f"{field}[{index}] {raw!r}: {library.name} is already listed as "
                f"{seen[library.key]!r}.",
                index=index,
                entry=raw,
            )
        seen[library.key] = library.entry
        libraries.append(library)
    return libraries
