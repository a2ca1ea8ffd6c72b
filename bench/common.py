"""What the benches share: running each database backend in a scratch directory and
printing the lines they measured under a title."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path


async def print_backends(
    title: str,
    backends: Sequence[str],
    run_backend: Callable[[str, Path], Awaitable[list[str]]],
) -> None:
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as work_dir:
        for backend in backends:
            lines += await run_backend(backend, Path(work_dir) / backend)
    print(title)
    for line in lines:
        print(line)
