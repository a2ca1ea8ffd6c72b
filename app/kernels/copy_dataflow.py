"""Copy to Dataflow: what a user installed in a local kernel's environment, as envyard
libraries.

A kernel that came from envyard keeps every package of its version as a library (at the
version installed now), so that a round trip changes nothing but what the user changed.

The kernel's own interpreter reports its distributions and conda records (one short
process). What the user asked for:
- pip: a distribution with pip's REQUESTED marker; uv marks every package it installs, so
  for distributions uv installed, the leaves (those no other installed distribution
  requires) stand for what was asked;
- conda: records with a requested spec in conda-meta (Python itself is the environment's
  Python version, not a library).
ipykernel and what it needs are the kernel's, not the environment's; pip, setuptools and
wheel are an environment's tooling. Editable, URL and local-path installs cannot be said in
envyard's grammar. Each of these is listed with why it was left out: nothing is dropped
silently. Every library kept is pinned `==` at its installed version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from packaging.markers import InvalidMarker, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from app.builders.inventory import READ_PREFIX
from app.builders.local import LocalHost
from app.builders.process import ChildFailed
from app.domain.requirements import PackageManager
from app.domain.versions import Package
from app.kernels.api import KernelError
from app.kernels.copy_local import client_env

KERNEL = "ipykernel"
TOOLING = frozenset({"pip", "setuptools", "wheel"})

# Run by the kernel's interpreter (any Python 3.8+): only the standard library.
SCRIPT = (
    "import sys\nprefix = sys.prefix\n"
    + READ_PREFIX
    + """\
import platform
conda = []
for record in records:
    specs = record.get("requested_specs") or []
    if not specs and record.get("requested_spec"):
        specs = [record["requested_spec"]]
    conda.append([record["name"], record["version"], specs])
dists = []
for d in m.distributions():
    direct = d.read_text("direct_url.json")
    dists.append({
        "name": d.metadata["Name"], "version": d.version, "requires": d.requires or [],
        "requested": d.read_text("REQUESTED") is not None,
        "installer": (d.read_text("INSTALLER") or "").strip(),
        "direct_url": json.loads(direct) if direct else None, "conda": conda_owned(d),
    })
markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": platform.python_version(),
    "os_name": os.name, "platform_machine": platform.machine(),
    "platform_release": platform.release(), "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "prefix": prefix,
                  "conda": conda, "dists": dists, "markers": markers}))
"""
)


@dataclass(frozen=True, slots=True)
class LeftOut:
    name: str
    version: str
    manager: PackageManager
    why: str


@dataclass(slots=True)
class Inspection:
    python_version: str
    conda: list[str] = field(default_factory=list)  # `name==version`
    pip: list[str] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    installed: list[Package] = field(default_factory=list)  # everything, by manager
    kernel_closure: set[str] = field(default_factory=set)  # ipykernel and what it needs


async def inspect(interpreter: str, keep: Iterable[Package] = ()) -> Inspection:
    """What the user installed in the environment of `interpreter`; `keep`: the packages of
    the envyard version the kernel came from, all of which stay libraries."""
    try:
        out = await LocalHost(client_env(), "/").output([interpreter, "-I", "-c", SCRIPT])
    except (ChildFailed, OSError) as exc:
        raise KernelError(f"the kernel's interpreter {interpreter} cannot be run: {exc}") from None
    return classify(json.loads(out.strip().splitlines()[-1]), keep)


def _needs(requires: Iterable[str], markers: dict[str, str]) -> set[str]:
    """The names a distribution needs here (markers evaluated, no extras)."""
    needed: set[str] = set()
    for line in requires:
        try:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(
                {**markers, "extra": ""}
            ):
                continue
        except (InvalidRequirement, InvalidMarker, UndefinedEnvironmentName):
            continue
        needed.add(canonicalize_name(requirement.name))
    return needed


def _closure(root: str, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in graph:
            continue
        seen.add(name)
        todo += graph[name]
    return seen


def _direct(info: dict[str, Any]) -> str:
    """Why an install that direct_url.json describes cannot be an envyard library."""
    url = str(info.get("url", ""))
    if (info.get("dir_info") or {}).get("editable"):
        return f"an editable install of {url}: envyard installs released packages only"
    if url.startswith("file:"):
        return f"installed from a local path ({url}): envyard installs from the index only"
    return f"installed from a URL ({url}): envyard installs from the index only"


def classify(found: dict[str, Any], keep: Iterable[Package] = ()) -> Inspection:
    """The libraries of what was found; a package of `keep` (the version a kernel came
    from) is one whatever the markers say, so that a round trip keeps every version."""
    kept = {p.key for p in keep}
    markers: dict[str, str] = found["markers"]
    result = Inspection(found["python"])
    pip_dists = [d for d in found["dists"] if not d["conda"]]
    graph = {str(canonicalize_name(d["name"])): _needs(d["requires"], markers) for d in pip_dists}
    needed_by_others = set().union(*graph.values()) if graph else set()
    result.kernel_closure = _closure(KERNEL, graph)
    for name, version, specs in found["conda"]:
        package = Package(name, version, PackageManager.CONDA)
        result.installed.append(package)
        if name == "python" or not (specs or package.key in kept):
            continue
        if package.key not in kept and (canonicalize_name(name) in result.kernel_closure):
            result.left_out.append(
                LeftOut(name, version, PackageManager.CONDA, "the kernel's own (ipykernel)")
            )
            continue
        result.conda.append(f"{name}=={version}")
    for dist in sorted(pip_dists, key=lambda d: canonicalize_name(d["name"])):
        name, version = dist["name"], dist["version"]
        key = canonicalize_name(name)
        package = Package(name, version, PackageManager.PIP)
        result.installed.append(package)
        asked = key not in needed_by_others if dist["installer"] == "uv" else dist["requested"]
        if package.key in kept and dist["direct_url"] is None:
            result.pip.append(f"{name}=={version}")
            continue
        if not asked:
            continue  # a dependency of what was asked for: the build brings it again
        if key in result.kernel_closure:
            why = "the kernel's own (ipykernel and what it needs)"
        elif key in TOOLING:
            why = "the environment's installer tooling"
        elif dist["direct_url"] is not None:
            why = _direct(dist["direct_url"])
        else:
            result.pip.append(f"{name}=={version}")
            continue
        result.left_out.append(LeftOut(name, version, PackageManager.PIP, why))
    return result
