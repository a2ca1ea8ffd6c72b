"""Writing a version's rattler lock file, through the conda runner's child process."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from app.builders import BuildFailed

PYPI_SIMPLE = "https://pypi.org/simple/"


class ChildFailed(BuildFailed):
    """A child process ended with an error; the message holds its last line."""


async def run_child(command: list[str], data: bytes = b"", cwd: str | None = None) -> bytes:
    """Run a short child process to its end and return its output; ChildFailed saying its
    last line when it fails. Killed with the caller when the caller is cancelled."""
    # No standard input unless there is something to say: writing to a child that already
    # exited fails (asyncio: "the handler is closed"), and a quick one may exit first.
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE if data else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
    )
    try:
        out, _ = await proc.communicate(data or None)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        said = out.decode(errors="replace").strip().splitlines()
        raise ChildFailed(
            f"{' '.join(command[:3])} failed (exit code {proc.returncode}): "
            f"{said[-1] if said else 'it said nothing'}"
        )
    return out


async def write_lock(
    channels: Sequence[str],
    pip: Sequence[tuple[str, str, str]],
    index_url: str | None,
    prefix: Path | None = None,
) -> str:
    """The lock file text: `prefix`'s conda records (if a prefix is given) from `channels`,
    and the pip distributions (name, version, URL of the file). Where the file's URL is not
    known, the distribution's page on the index says where it is found (rattler keys pypi
    entries by location: an empty one would merge them)."""
    index = (index_url or PYPI_SIMPLE).rstrip("/") + "/"
    with tempfile.TemporaryDirectory(prefix="envyard-lock-") as work:
        result = Path(work) / "envyard.lock"
        request = {
            "action": "lock",
            "prefix": str(prefix) if prefix is not None else None,
            "channels": list(channels),
            "pip": [
                {"name": n, "version": v, "url": url or f"{index}{canonicalize_name(n)}/"}
                for n, v, url in pip
            ],
            "result": str(result),
        }
        await run_child(
            [sys.executable, "-m", "app.builders.conda_runner"], json.dumps(request).encode(), work
        )
        return await asyncio.to_thread(result.read_text)
