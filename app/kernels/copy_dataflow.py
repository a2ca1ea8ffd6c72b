"""Copy to Dataflow: what a user installed in a local kernel's environment, as envyard
libraries.

A kernel that came from envyard keeps every package of its version as a library (at the
version installed now), so that a round trip changes nothing but what the user changed.

The kernel's own interpreter reports its distributions and conda records (one short
process). What the user asked for:
- pip: a distribution with pip's REQUESTED marker; uv marks every package it installs, so
  every distribution uv installed counts as asked for;
- conda: records with a requested spec in conda-meta (Python itself is the environment's
  Python version, not a library).
What those need (the requirements of every distribution, conda's included, markers
evaluated here) is kept too, each pinned `==` at its installed version, so that a build
gets the same versions: a dependency left unpinned would come at the index's latest.
ipykernel and what only it needs are the kernel's, not the environment's (a conda-installed
ipykernel too); pip, setuptools and wheel are an environment's tooling, unless something
kept needs them. Editable, URL and local-path installs cannot be said in envyard's grammar,
nor then what only they need. Each of these is listed with why it was left out: nothing is
dropped silently. (Conda records that no kept library needs as a Python distribution are
the conda solver's to bring again.)
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
    if not d.metadata["Name"]:
        continue  # a broken install: no name to say
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
    return classify(parse(interpreter, out), keep)


def parse(interpreter: str, out: str) -> dict[str, Any]:
    """The report of SCRIPT (its last line); KernelError when it is not one."""
    lines = out.strip().splitlines()
    try:
        found = json.loads(lines[-1]) if lines else None
    except (ValueError, RecursionError):
        found = None
    if (
        isinstance(found, dict)
        and isinstance(found.get("python"), str)
        and isinstance(found.get("markers"), dict)
        and isinstance(found.get("conda"), list)
        and all(isinstance(c, list) and len(c) == 3 for c in found["conda"])
        and isinstance(found.get("dists"), list)
        and all(isinstance(d, dict) and d.keys() >= _DIST_KEYS for d in found["dists"])
    ):
        return found
    said = lines[-1][:200] if lines else "nothing"
    raise KernelError(
        f"the kernel's interpreter {interpreter} did not report its packages (it said: "
        f"{said}); it must be a Python 3.8 or later"
    )


_DIST_KEYS = frozenset({"name", "version", "requires", "requested", "installer", "direct_url"})


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


def _closure(roots: Iterable[str], graph: dict[str, set[str]]) -> set[str]:
    """The installed distributions `roots` need, themselves included (cycles are fine)."""
    seen: set[str] = set()
    todo = list(roots)
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
    dists: dict[str, dict[str, Any]] = {}
    for dist in found["dists"]:  # in sys.path order: the first of a name is the one imported
        dists.setdefault(str(canonicalize_name(dist["name"])), dist)
    # Every distribution's needs, conda's included: a conda-installed ipykernel has a closure.
    graph = {key: _needs(d["requires"], markers) for key, d in dists.items()}
    kernel = _closure([KERNEL], graph)
    pip_roots, conda_roots, left_out = _roots(found, dists, kernel, kept)
    needed = _closure([*pip_roots, *conda_roots], graph)
    result.kernel_closure = kernel - needed
    for name, version, specs in found["conda"]:
        result.installed.append(Package(name, version, PackageManager.CONDA))
        key = str(canonicalize_name(name))
        if name == "python":
            continue
        if key in conda_roots or (key in needed and key in dists):
            result.conda.append(f"{name}=={version}")
        elif specs and key in result.kernel_closure:
            result.left_out.append(
                LeftOut(name, version, PackageManager.CONDA, "the kernel's own (ipykernel)")
            )
    for key, dist in sorted(dists.items()):
        if dist.get("conda"):
            continue  # conda's: said by its conda record
        name, version = dist["name"], dist["version"]
        result.installed.append(Package(name, version, PackageManager.PIP))
        if key in needed and key not in left_out:
            result.pip.append(f"{name}=={version}")
            continue
        why = left_out.get(key) or _why_not_needed(key, graph, needed, result.kernel_closure)
        result.left_out.append(LeftOut(name, version, PackageManager.PIP, why))
    return result


def _roots(
    found: dict[str, Any],
    dists: dict[str, dict[str, Any]],
    kernel: set[str],
    kept: set[tuple[PackageManager, str]],
) -> tuple[set[str], set[str], dict[str, str]]:
    """(pip roots, conda roots, why each pip distribution that can never be a library is
    left out). A root is asked for, and is neither the kernel's nor tooling; a package of
    the version the kernel came from always is one."""
    pip_roots: set[str] = set()
    never: dict[str, str] = {}
    for key, dist in dists.items():
        if dist.get("conda"):
            continue
        if dist["direct_url"] is not None:
            never[key] = _direct(dist["direct_url"])
        else:
            # Not asked for, the kernel's or tooling: kept when something kept needs it.
            mine = _asked(dist) and key not in kernel and key not in TOOLING
            if mine or (PackageManager.PIP, key) in kept:
                pip_roots.add(key)
    conda_roots = set()
    for name, _version, specs in found["conda"]:
        key = str(canonicalize_name(name))
        asked = bool(specs) and name != "python" and key not in kernel
        if asked or (PackageManager.CONDA, key) in kept:
            conda_roots.add(key)
    return pip_roots, conda_roots, never


def _asked(dist: dict[str, Any]) -> bool:
    """pip's REQUESTED marker; uv writes it for every package, so all of uv's count."""
    return bool(dist["requested"]) or dist["installer"] == "uv"


_KERNELS = "the kernel's own (ipykernel and what it needs)"


def _why_not_needed(
    key: str, graph: dict[str, set[str]], needed: set[str], kernel: set[str]
) -> str:
    """Why a pip distribution that nothing kept needs is left out."""
    if key in kernel:
        return _KERNELS
    if key in TOOLING:
        return "the environment's installer tooling"
    users = sorted(other for other, needs in graph.items() if key in needs and other not in needed)
    if users:
        more = f" and {len(users) - 3} more" if len(users) > 3 else ""
        which = "which are" if len(users) > 1 else "which is"
        return f"needed only by {', '.join(users[:3])}{more}, {which} left out"
    return "not asked for (no REQUESTED marker) and nothing kept needs it"
