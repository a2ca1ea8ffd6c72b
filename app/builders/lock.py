"""Writing a version's rattler lock file, through the conda runner's child process."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

from app.builders.process import run_child

PYPI_SIMPLE = "https://pypi.org/simple/"


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
