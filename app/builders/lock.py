"""A version's rattler lock file, written by the conda runner (in a child process)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from app.builders.process import run_child

PYPI_SIMPLE = "https://pypi.org/simple/"


def lock_request(
    channels: Sequence[str],
    pip: Sequence[tuple[str, str, str]],
    index_url: str | None,
    prefix: str | None,
    result: str,
) -> dict[str, Any]:
    """The conda runner's request for a lock file at `result`: `prefix`'s conda records (if a
    prefix is given) from `channels`, and the pip distributions (name, version, URL of the
    file). Where the file's URL is not known, the distribution's page on the index says where
    it is found (rattler keys pypi entries by location: an empty one would merge them)."""
    index = (index_url or PYPI_SIMPLE).rstrip("/") + "/"
    return {
        "action": "lock",
        "prefix": prefix,
        "channels": list(channels),
        "pip": [
            {"name": n, "version": v, "url": url or f"{index}{canonicalize_name(n)}/"}
            for n, v, url in pip
        ],
        "result": result,
    }


# A plain YAML scalar that a YAML reader would take for a number or a keyword is quoted,
# as rattler (serde_yaml) writes it.
_NOT_A_STRING = re.compile(
    r"[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+"
    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
)
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!\-/:#=%~?&;@]*")


def _scalar(text: str) -> str:
    if _PLAIN.fullmatch(text) and not _NOT_A_STRING.fullmatch(text) and ": " not in text:
        return text
    return "'" + text.replace("'", "''") + "'"


def pip_lock_text(pip: Sequence[tuple[str, str, str]], index_url: str | None) -> str:
    """The rattler lock file (format 7) of pip distributions only (name, version, URL of the
    file), written here as rattler writes it, byte for byte (tests/builders/test_lock.py
    compares the two): a pip-only build needs no child process for its lock file."""
    request = lock_request((), pip, index_url, None, "")
    entries = sorted(
        (p["url"], str(canonicalize_name(p["name"])), p["version"]) for p in request["pip"]
    )
    lines = [
        "version: 7",
        "platforms:",
        "- name: linux-64",
        "environments:",
        "  default:",
        "    channels: []",
    ]
    if entries:
        lines += ["    packages:", "      linux-64:"]
        lines += [f"      - pypi: {_scalar(url)}" for url, _, _ in entries]
        lines.append("packages:")
        for url, name, version in entries:
            lines += [f"- pypi: {_scalar(url)}", f"  name: {_scalar(name)}"]
            lines.append(f"  version: {_scalar(version)}")
    else:
        lines += ["    packages: {}", "packages: []"]
    return "\n".join(lines) + "\n"


async def write_lock(
    channels: Sequence[str], pip: Sequence[tuple[str, str, str]], index_url: str | None
) -> str:
    """The lock file text of pip distributions (and no conda records), written on this host:
    for versions recorded without one (before lock files, or when writing it at build time
    failed)."""
    if not channels:
        return pip_lock_text(pip, index_url)
    with tempfile.TemporaryDirectory(prefix="envyard-lock-") as work:
        result = Path(work) / "envyard.lock"
        request = lock_request(channels, pip, index_url, None, str(result))
        path = Path(work) / "lock.json"
        await asyncio.to_thread(path.write_text, json.dumps(request))
        await run_child([sys.executable, "-m", "app.builders.conda_runner", str(path)], cwd=work)
        return await asyncio.to_thread(result.read_text)


async def read_lock(text: str) -> dict[str, Any]:
    """A lock file's packages, read by rattler on this host: `channels`, `conda` (name,
    version, build, url each) and `pypi` (name, version, url each). ChildFailed when the
    file cannot be read."""
    with tempfile.TemporaryDirectory(prefix="envyard-lock-") as work:
        path, request = Path(work) / "envyard.lock", Path(work) / "read.json"
        await asyncio.to_thread(path.write_text, text)
        await asyncio.to_thread(
            request.write_text, json.dumps({"action": "read", "lock": str(path)})
        )
        out = await run_child(
            [sys.executable, "-m", "app.builders.conda_runner", str(request)], cwd=work
        )
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return found
