"""Conda work through py-rattler, run as a child process of a builder.

    python -m app.builders.conda_runner REQUEST.json    (or the request on standard input)

rattler's native runtime can crash the interpreter at exit after async calls, so the server
and workers never load it: each conda step runs here, in a process of its own (in a build
container, this file runs as a script beside the rattler package). The request (JSON) names
an action:

- `install`: solve `specs` against `channels` (the previous version's packages locked, so a
  new version moves only what it must), then install into `prefix`, linked from the
  shared package cache. Progress goes to standard output line by line; what was installed
  is in the prefix's conda-meta/.
- `lock`: write a rattler lock file of `prefix`'s conda packages (if any) and the given pip
  packages to `result`.
- `read`: print (as one JSON line) the packages of the lock file `lock`: its channels, conda
  packages (name, version, build, url) and pypi packages (name, version, url).

A failure prints `error: <what went wrong>` as the last line and exits with status 1.
Nothing here interprets user input beyond handing match specs to rattler's parser.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Final, cast

PLATFORM: Final = "linux-64"


def say(text: str) -> None:
    print(text, flush=True)


def prefix_records(prefix: Path) -> list[Any]:
    from rattler import PrefixRecord

    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return []
    return [PrefixRecord.from_path(path) for path in sorted(meta.glob("*.json"))]


class Refused(Exception):
    """A request rattler accepted but envyard does not: its message is the last line."""


def missing_extras(specs: list[Any], records: list[Any]) -> list[str]:
    """Extras asked for that the solved package does not have (rattler ignores them)."""
    solved = {record.name.normalized: record for record in records}
    missing = []
    for spec in specs:
        extras = getattr(spec, "extras", None) or []
        record = solved.get(spec.name.normalized) if spec.name is not None else None
        if record is None:
            continue
        offered = set(record.extra_depends or {})
        for extra in extras:
            if extra not in offered:
                have = ", ".join(sorted(offered)) or "none"
                missing.append(
                    f"{record.name.normalized} {record.version} has no extra {extra!r} "
                    f"(its extras: {have})"
                )
    return missing


def solver_message(exc: Exception) -> str:
    """rattler's explanation of a failed solve, as one line without its tree drawing."""
    text = str(exc).replace("Cannot solve the request because of:", "")
    for glyph in ("└─", "├─", "│"):
        text = text.replace(glyph, " ")
    return " ".join(text.split()).rstrip(".")


class Reporter:
    """Says what a person waits on: downloads and links, one line each (structurally an
    rattler.install.InstallerReporter: it implements the callbacks it needs)."""

    def __init__(self) -> None:
        self.downloads = 0
        self.names: dict[int, str] = {}

    def on_transaction_start(self, total_operations: int) -> None:
        say(f"Linking {total_operations} package{'' if total_operations == 1 else 's'}")

    def on_populate_cache_start(self, operation: int, package_name: str) -> int:
        self.names[operation] = package_name
        return operation

    def on_download_start(self, cache_entry: int) -> int:
        self.downloads += 1
        say(f"Downloading {self.names.get(cache_entry, 'a package')}")
        return cache_entry

    def on_transaction_complete(self) -> None:
        say("Linked")


async def install(request: dict[str, Any]) -> None:
    from rattler import Gateway, MatchSpec, SourceConfig, VirtualPackage, solve
    from rattler import install as link

    cache = Path(request["cache_dir"])
    prefix = Path(request["prefix"])
    channels: list[str] = request["channels"]
    specs = [MatchSpec(spec) for spec in request["specs"]]
    previous = Path(request["previous_prefix"]) if request.get("previous_prefix") else None
    locked = prefix_records(previous) if previous is not None else []
    # Local and test channels may be served by simple HTTP servers: sharded repodata with
    # their 304 answers breaks later solves (STACK-NOTES), plain repodata.json does not.
    gateway = Gateway(
        cache_dir=cache / "repodata", default_config=SourceConfig(sharded_enabled=False)
    )
    say(f"Solving {', '.join(request['specs'])} (channels: {' '.join(channels)})")
    if locked:
        say(f"Keeping the {len(locked)} conda packages of the previous version where possible")
    started = time.monotonic()
    records = await solve(
        channels,
        specs,
        gateway=gateway,
        locked_packages=locked,
        virtual_packages=VirtualPackage.detect(),
        platforms=[PLATFORM, "noarch"],
    )
    say(f"Solved in {time.monotonic() - started:.1f} s: {len(records)} conda packages")
    missing = missing_extras(specs, records)
    if missing:
        raise Refused("; ".join(missing))
    for record in sorted(records, key=lambda r: r.name.normalized):
        say(f"  {record.name.normalized} {record.version} {record.build}")
    progress = Reporter()
    started = time.monotonic()
    await link(
        records,
        target_prefix=prefix,
        cache_dir=cache / "pkgs",
        installed_packages=prefix_records(prefix),
        show_progress=False,
        reporter=cast(Any, progress),
        requested_specs=[spec._match_spec for spec in specs],
    )
    downloaded = f"{progress.downloads} downloaded" if progress.downloads else "all from cache"
    say(f"Installed in {time.monotonic() - started:.1f} s ({downloaded})")


def lock(request: dict[str, Any]) -> None:
    from rattler import LockChannel, LockFile, LockPlatform

    platform = LockPlatform(PLATFORM)
    lock_file = LockFile([platform])
    lock_file.set_channels("default", [LockChannel(url) for url in request["channels"]])
    prefix = request.get("prefix")
    for record in prefix_records(Path(prefix)) if prefix else []:
        lock_file.add_conda_package("default", platform, record)
    for package in request["pip"]:
        lock_file.add_pypi_package(
            "default", platform, package["name"], package["version"], package["url"]
        )
    lock_file.to_path(Path(request["result"]))


def read(request: dict[str, Any]) -> None:
    from rattler import LockFile

    environment = LockFile.from_path(Path(request["lock"])).default_environment()
    if environment is None:
        raise ValueError("the lock file has no default environment")
    conda, pypi = [], []
    for platform in environment.platforms():
        for package in environment.packages(platform) or []:
            record = getattr(package, "package_record", None)
            if record is not None:
                conda.append(
                    {
                        "name": package.name,
                        "version": str(record.version),
                        "build": str(record.build),
                        "url": package.location,
                    }
                )
            else:
                version = str(getattr(package, "version", ""))
                pypi.append({"name": package.name, "version": version, "url": package.location})
    channels = [str(channel) for channel in environment.channels()]
    say(json.dumps({"channels": channels, "conda": conda, "pypi": pypi}))


def main() -> int:
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as source:
            request = json.load(source)
    else:
        request = json.loads(sys.stdin.read())
    try:
        if request["action"] == "install":
            asyncio.run(install(request))
        elif request["action"] == "lock":
            lock(request)
        elif request["action"] == "read":
            read(request)
        else:
            raise ValueError(f"unknown action {request['action']!r}")
    except Exception as exc:
        if isinstance(exc, ImportError) and exc.name == "rattler":
            say(
                f"error: the conda tools cannot run on Python {sys.version.split()[0]} at "
                f"{sys.executable} ({exc}); they need CPython 3.10 or later on x86_64 Linux"
            )
        elif type(exc).__name__ == "SolverError":
            for line in str(exc).splitlines():  # rattler's tree, as it draws it
                say(f"  {line}")
            asked = ", ".join(request.get("specs", []))
            say(f"error: {asked} cannot be installed together: {solver_message(exc)}")
        else:
            message = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
            say(f"error: {message}")
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Not sys.exit: rattler's runtime can crash the interpreter's shutdown after async calls
    # (SIGSEGV in about a quarter of runs). Everything is written; leave at once.
    os._exit(code)
