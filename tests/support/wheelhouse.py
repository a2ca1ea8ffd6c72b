"""ipykernel and what it needs, as wheels, made offline from this interpreter's environment.

Kernel tests make Jupyter kernels in new environments, so the tests' package index must
serve ipykernel too, and tests never use the public index. Each installed distribution of
the closure is packed back into a wheel from its RECORD: files under site-packages keep
their paths, data files outside it (`share/jupyter/...`) go under `<dist>.data/data/`,
console scripts are left for the installer to regenerate from entry_points.txt, and the
original WHEEL file (its tags) is kept. The wheels are cached per host in the system temp
folder, named by the exact set of distributions.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as metadata
import io
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.cache import private_root

# dist-info files written by the installer, and RECORD (made again) with its signatures.
_NOT_REPACKED = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD", "RECORD.jws", "RECORD.p7s"}


def closure(roots: Sequence[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` (requirement strings) need on this interpreter.

    Requirements are followed where their markers hold here, with the extras asked for (none
    for the roots); one that holds but is not installed is an error, since the index would
    then lack it and installs from it would fail later, less clearly.
    """
    found: dict[str, metadata.Distribution] = {}
    followed: set[tuple[str, str]] = set()  # (project, extra); "" is the requirements proper
    todo = [(Requirement(root), "the wheelhouse") for root in roots]
    while todo:
        requirement, needed_by = todo.pop()
        name = canonicalize_name(requirement.name)
        if name not in found:
            try:
                found[name] = metadata.distribution(name)
            except metadata.PackageNotFoundError:
                raise RuntimeError(
                    f"{requirement} (needed by {needed_by}) is not installed in {sys.prefix}; "
                    "install it there so that the tests' index can serve it"
                ) from None
        dist = found[name]
        for extra in {"", *requirement.extras}:
            if (name, extra) in followed:
                continue
            followed.add((name, extra))
            for line in dist.requires or []:
                needed = Requirement(line)
                if needed.marker is None or needed.marker.evaluate({"extra": extra}):
                    todo.append((needed, f"{dist.name} {dist.version}"))
    return sorted(found.values(), key=lambda d: canonicalize_name(d.name))


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def wheel_name(dist: metadata.Distribution) -> str:
    """The file name of `dist`'s wheel: its WHEEL file's tags as a compressed tag set."""
    wheel = dist.read_text("WHEEL") or ""
    tags = [line[4:].strip().split("-") for line in wheel.splitlines() if line[:4] == "Tag:"]
    if not tags:
        raise RuntimeError(f"{dist.name} {dist.version}: no Tag in its WHEEL file")
    compressed = "-".join(".".join(dict.fromkeys(tag[i] for tag in tags)) for i in range(3))
    return f"{canonicalize_name(dist.name).replace('-', '_')}-{dist.version}-{compressed}.whl"


def repack(dist: metadata.Distribution, directory: Path) -> Path:
    """`dist` as a wheel file in `directory`, from the files its RECORD lists."""
    files = dist.files
    if files is None:
        raise RuntimeError(f"{dist.name} {dist.version} has no RECORD: it cannot be repacked")
    info = next(f.parent for f in files if f.name == "METADATA" and f.parent.suffix == ".dist-info")
    data = f"{info.stem}.data/data"  # named like the .dist-info folder, as installers expect
    site = Path(os.path.normpath(str(dist.locate_file(""))))
    prefix = Path(os.path.normpath(sys.prefix))
    scripts = {e.name for e in dist.entry_points if e.group in ("console_scripts", "gui_scripts")}
    path = directory / wheel_name(dist)
    record = io.StringIO()
    rows = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as wheel:
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            if file.parent == info and file.name in _NOT_REPACKED:
                continue
            source = Path(os.path.normpath(site / file))
            if source.is_relative_to(site):
                arcname = source.relative_to(site).as_posix()
            elif source.parent == prefix / "bin" and source.name in scripts:
                continue
            elif source.is_relative_to(prefix) and source.parent != prefix / "bin":
                arcname = f"{data}/{source.relative_to(prefix).as_posix()}"
            else:
                raise RuntimeError(
                    f"{dist.name} {dist.version}: cannot repack {source}: outside {prefix}, "
                    "or a script that its entry points do not make again"
                )
            content = source.read_bytes()
            entry = zipfile.ZipInfo.from_file(source, arcname, strict_timestamps=False)
            wheel.writestr(entry, content, zipfile.ZIP_DEFLATED, compresslevel=1)
            rows.writerow((arcname, _record_hash(content), len(content)))
        rows.writerow((f"{info}/RECORD", "", ""))
        wheel.writestr(f"{info}/RECORD", record.getvalue())
    return path


def _build(dists: Sequence[metadata.Distribution], home: Path) -> None:
    """Make the wheels of `dists` in a private folder, then rename it to `home` at once, so
    that a reader never sees half a wheelhouse and concurrent builders do not clash."""
    work = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
    try:
        for dist in dists:
            repack(dist, work)
        (work / ".complete").touch()
        work.chmod(0o755)  # mkdtemp's 0700 would hide the wheelhouse from other users
        try:
            work.rename(home)
        except OSError:  # another builder renamed its folder first: use that one
            if not (home / ".complete").exists():
                raise RuntimeError(f"{home} is incomplete: remove it") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wheelhouse(roots: Sequence[str] = ("ipykernel",)) -> list[Path]:
    """Wheels of `roots` and everything they need here, made once per host and set.

    The cache folder is named by a hash of the distributions (name==version), the
    interpreter, and this file, so that an upgrade or a change to the repacking makes a
    new one.
    """
    dists = closure(roots)
    key = [sys.version, Path(__file__).read_text(), *(f"{d.name}=={d.version}" for d in dists)]
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
    home = private_root() / f"wheelhouse-{digest}"
    if not (home / ".complete").exists():
        _build(dists, home)
    return sorted(home.glob("*.whl"))
