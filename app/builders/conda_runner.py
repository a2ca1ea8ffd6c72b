"""Conda work through py-rattler, run as a child process of a builder.

    python -m app.builders.conda_runner < request.json

rattler's native runtime can crash the interpreter at exit after async calls, so the server
and workers never load it: each conda step runs here, in a process of its own. The request
(JSON on standard input) names an action:

- `install`: solve `specs` against `channels` (the previous version's packages locked, so a
  new version moves only what it must), then install into `prefix`, hard-linked from the
  shared package cache. Progress goes to standard output line by line; the installed
  records are written as JSON to `result`.
- `lock`: write a rattler lock file of `prefix`'s conda packages (if any) and the given pip
  packages to `result`.

A failure prints `error: <what went wrong>` as the last line and exits with status 1.
Nothing here interprets user input beyond handing match specs to rattler's parser.
"""

from __future__ import annotations

import asyncio
import json
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


def describe(record: Any) -> dict[str, Any]:
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": record.build,
        "subdir": record.subdir,
        "channel": record.channel,
        "url": record.url,
        "sha256": record.sha256.hex() if record.sha256 else None,
        "md5": record.md5.hex() if record.md5 else None,
    }


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
    installed = [describe(record) for record in prefix_records(prefix)]
    Path(request["result"]).write_text(json.dumps(installed))


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


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        if request["action"] == "install":
            asyncio.run(install(request))
        elif request["action"] == "lock":
            lock(request)
        else:
            raise ValueError(f"unknown action {request['action']!r}")
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        say(f"error: {message}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
