"""What an environment holds: conda records and pip distributions, each under its manager.

A conda prefix lists its packages in `conda-meta/*.json`, each with the files it linked; a
Python distribution whose METADATA one of them linked was put there by conda (INSTALLER may
say anything: a repackaged interpreter brings pip's own dist-info). Every other distribution
the environment's Python sees was installed by pip (uv), and is reported as PIP.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.builders.process import run_child
from app.domain.requirements import PackageManager
from app.domain.versions import Package

# Run by the environment's own Python, isolated from the caller's settings.
_DISTRIBUTIONS = (
    "import json, importlib.metadata as m; print(json.dumps(sorted("
    "[d.metadata['Name'], d.version, str(getattr(d, '_path', ''))] for d in m.distributions())))"
)


def conda_meta(prefix: Path) -> list[dict[str, Any]]:
    """The prefix's conda records (plain JSON: no rattler needed to read them)."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return []
    return [json.loads(path.read_text()) for path in sorted(meta.glob("*.json"))]


@dataclass(frozen=True, slots=True)
class Survey:
    packages: list[Package]  # every package, each under its manager
    conda_distributions: list[Package]  # the Python distributions conda's packages brought


async def installed(python: Path) -> list[Package]:
    """Every package of the environment of `python`, sorted by manager and name."""
    return (await survey(python)).packages


async def survey(python: Path) -> Survey:
    """What the environment of `python` holds, and which distributions are conda's."""
    prefix = python.parent.parent
    records = await asyncio.to_thread(conda_meta, prefix)
    conda_files = {str(f) for record in records for f in record.get("files", [])}
    out = await run_child([str(python), "-I", "-c", _DISTRIBUTIONS])
    packages = [
        Package(str(r["name"]), str(r["version"]), PackageManager.CONDA, str(r.get("build", "")))
        for r in records
    ]
    conda_distributions = []
    for name, version, path in json.loads(out.splitlines()[-1]):
        if path:
            try:
                metadata = (Path(path) / "METADATA").relative_to(prefix)
            except ValueError:
                metadata = None
            if metadata is not None and str(metadata) in conda_files:
                # conda's: listed as its conda record, never as pip's
                conda_distributions.append(Package(name, version, PackageManager.PIP))
                continue
        packages.append(Package(name, version, PackageManager.PIP))
    return Survey(sorted(packages, key=lambda p: (p.manager.value, p.key[1])), conda_distributions)
