"""Lock files of a version in the formats people use: requirements.txt and environment.yml.

The rattler lock file (format LOCK) is written by the builder from what it linked and
installed, with URLs and hashes; these two are derived from the recorded packages alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum

from app.domain.requirements import PackageManager
from app.domain.statuses import VersionStatus
from app.domain.versions import Package


class LockFormat(StrEnum):
    REQUIREMENTS_TXT = "REQUIREMENTS_TXT"
    ENVIRONMENT_YML = "ENVIRONMENT_YML"
    LOCK = "LOCK"


def has_lockfile(status: VersionStatus) -> bool:
    """Only a successful build installed a set of packages to lock."""
    return status is VersionStatus.SUCCEEDED


def _sorted(packages: Sequence[Package], manager: PackageManager) -> list[Package]:
    return sorted((p for p in packages if p.manager is manager), key=lambda p: p.key[1])


def requirements_txt(packages: Sequence[Package]) -> str:
    """Every pip-installed distribution, `name==version`, one a line."""
    return "".join(f"{p.name}=={p.version}\n" for p in _sorted(packages, PackageManager.PIP))


def environment_yml(
    name: str, channels: Sequence[str], packages: Sequence[Package], python_version: str
) -> str:
    """A conda environment file: channels, exact conda pins (`name=version=build`) and the
    pip distributions under `pip:`. A pip-only version names its Python series.

    Scalars are written as JSON strings, which YAML reads as double-quoted strings.
    """
    conda = _sorted(packages, PackageManager.CONDA)
    pip = _sorted(packages, PackageManager.PIP)
    lines = [f"name: {json.dumps(name)}"]
    if channels:
        lines += ["channels:", *(f"  - {json.dumps(channel)}" for channel in channels)]
    else:
        lines.append("channels: []")
    lines.append("dependencies:")
    pins = ["=".join(filter(None, (p.name, p.version, p.build))) for p in conda]
    lines += [f"  - {json.dumps(pin)}" for pin in pins or [f"python={python_version}"]]
    if pip:
        lines += ["  - pip:", *(f"      - {json.dumps(f'{p.name}=={p.version}')}" for p in pip)]
    return "\n".join(lines) + "\n"
