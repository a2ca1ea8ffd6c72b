"""What an environment holds: conda records and pip distributions, each under its manager.

A conda prefix lists its packages in `conda-meta/*.json`, each with the files it linked; a
Python distribution whose METADATA one of them linked was put there by conda (INSTALLER may
say anything: a repackaged interpreter brings pip's own dist-info). Every other distribution
the environment's Python sees was installed by pip (uv), and is reported as PIP.

The environment's own Python reads both, in one short process on the build's host (this
machine, or the build container).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain.requirements import PackageManager
from app.domain.versions import Package

if TYPE_CHECKING:
    from app.builders.steps import Host

# Script text (any Python 3.8+, standard library only) that reads the conda records of
# `prefix` into `records` (their JSON) and the files they linked into `files`, then says
# of each distribution (`d`) whether conda put it there (`conda_owned(d)`).
READ_PREFIX = """\
import json, os, sys, importlib.metadata as m
meta = os.path.join(prefix, "conda-meta")
records, files = [], set()
for name in sorted(os.listdir(meta)) if os.path.isdir(meta) else []:
    if name.endswith(".json"):
        with open(os.path.join(meta, name)) as f:
            records.append(json.load(f))
        files.update(records[-1].get("files", []))
def conda_owned(d):
    path = str(getattr(d, "_path", "") or "")
    return bool(path) and os.path.relpath(os.path.join(path, "METADATA"), prefix) in files
"""

# The report, of the distributions in `found`. A distribution's name and version are read
# from its metadata's header lines: `d.metadata` parses the whole file as an email message,
# long description included (49 ms for envyard's own 85 distributions, 6 this way).
REPORT = """\
def name_version(d):
    name = version = None
    for line in (d.read_text("METADATA") or d.read_text("PKG-INFO") or "").splitlines():
        if not line.strip():
            break
        if name is None and line[:5].lower() == "name:":
            name = line[5:].strip()
        elif version is None and line[:8].lower() == "version:":
            version = line[8:].strip()
    if name is None or version is None:
        return d.metadata["Name"], d.version
    return name, version
conda = [[r["name"], r["version"], r.get("build", "")] for r in records]
dists = sorted([*name_version(d), conda_owned(d)] for d in found)
result = json.dumps({"conda": conda, "pip": dists})
"""

# Run by the environment's own Python, isolated, with the prefix as its argument.
SCRIPT = (
    "import sys\nprefix = sys.argv[1]\n"
    + READ_PREFIX
    + "found = m.distributions()\n"
    + REPORT
    + "print(result)\n"
)


@dataclass(frozen=True, slots=True)
class Survey:
    packages: list[Package]  # every package, each under its manager
    conda_distributions: list[Package]  # the Python distributions conda's packages brought


def parse(output: str) -> Survey:
    found = json.loads(output.strip().splitlines()[-1])
    packages = [
        Package(str(name), str(version), PackageManager.CONDA, str(build))
        for name, version, build in found["conda"]
    ]
    conda_distributions = []
    for name, version, conda_owned in found["pip"]:
        if conda_owned:  # conda's: listed as its conda record, never as pip's
            conda_distributions.append(Package(name, version, PackageManager.PIP))
        else:
            packages.append(Package(name, version, PackageManager.PIP))
    return Survey(sorted(packages, key=lambda p: (p.manager.value, p.key[1])), conda_distributions)


async def survey(host: Host, prefix: str) -> Survey:
    """What the environment at `prefix` holds, and which distributions are conda's."""
    return parse(await host.output([f"{prefix}/bin/python", "-I", "-c", SCRIPT, prefix]))


async def survey_built(host: Host, prefix: str) -> Survey:
    """`survey` of a prefix envyard built (a uv virtualenv or a conda prefix): on this
    machine, read in this process rather than by a Python process of its own."""
    if getattr(host, "local", False):
        return await asyncio.to_thread(survey_here, prefix)
    return await survey(host, prefix)


def survey_here(prefix: str) -> Survey:
    """The survey's own code, run here: the distributions the prefix's Python sees are those
    of its site-packages directories and the directories their .pth files add (isolated
    mode: no user site; a virtualenv never sees its base interpreter's). Only for prefixes
    envyard built, whose layout is that one; tests/builders/test_inventory.py compares it
    with the prefix's own Python."""
    namespace: dict[str, Any] = {"prefix": prefix}
    exec(_READ_PREFIX_CODE, namespace)  # constant code, the script's own
    namespace["found"] = importlib.metadata.distributions(path=_site_paths(Path(prefix)))
    exec(_REPORT_CODE, namespace)
    return parse(namespace["result"])


# compiled once: compiling them took a millisecond of each build
_READ_PREFIX_CODE = compile(READ_PREFIX, "<envyard survey>", "exec")
_REPORT_CODE = compile(REPORT, "<envyard survey report>", "exec")


def _site_paths(prefix: Path) -> list[str]:
    paths: list[str] = []
    for site in sorted(prefix.glob("lib/python3*/site-packages")):
        paths.append(str(site))
        for pth in sorted(site.glob("*.pth")):
            for line in pth.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "import ", "import\t")):
                    added = (site / line).resolve()
                    if added.is_dir() and str(added) not in paths:
                        paths.append(str(added))
    return paths
