"""What an environment holds: conda records and pip distributions, each under its manager.

A conda prefix lists its packages in `conda-meta/*.json`, each with the files it linked; a
Python distribution whose METADATA one of them linked was put there by conda (INSTALLER may
say anything: a repackaged interpreter brings pip's own dist-info). Every other distribution
the environment's Python sees was installed by pip (uv), and is reported as PIP.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from app.builders import BuildFailed
from app.domain.requirements import PackageManager
from app.domain.versions import Package

# Run by the environment's own Python, isolated from the caller's settings.
_DISTRIBUTIONS = (
    "import json, importlib.metadata as m; print(json.dumps(sorted("
    "[d.metadata['Name'], d.version, str(getattr(d, '_path', ''))] for d in m.distributions())))"
)


def conda_meta(prefix: Path) -> list[dict[str, object]]:
    """The prefix's conda records (plain JSON: no rattler needed to read them)."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return []
    return [json.loads(path.read_text()) for path in sorted(meta.glob("*.json"))]


async def installed(python: Path) -> list[Package]:
    """Every package of the environment of `python`, sorted by manager and name."""
    prefix = python.parent.parent
    records = await asyncio.to_thread(conda_meta, prefix)
    conda_files = {str(f) for record in records for f in record.get("files", [])}  # type: ignore[attr-defined]
    proc = await asyncio.create_subprocess_exec(
        str(python),
        "-I",
        "-c",
        _DISTRIBUTIONS,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BuildFailed(f"Listing the installed packages failed: {err.decode(errors='replace')}")
    packages = [
        Package(str(r["name"]), str(r["version"]), PackageManager.CONDA, str(r.get("build", "")))
        for r in records
    ]
    for name, version, path in json.loads(out):
        if path:
            try:
                metadata = (Path(path) / "METADATA").relative_to(prefix)
            except ValueError:
                metadata = None
            if metadata is not None and str(metadata) in conda_files:
                continue  # conda's, and already listed as its conda record
        packages.append(Package(name, version, PackageManager.PIP))
    return sorted(packages, key=lambda p: (p.manager.value, p.key[1]))
