"""Where builds wait for a builder. Standalone: tasks in this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger(__name__)

BuildRunner = Callable[[int, int], Awaitable[None]]


class BuildQueue(Protocol):
    async def enqueue(self, version_id: int, attempt: int) -> None: ...

    async def aclose(self) -> None: ...


class InProcessQueue:
    """Runs builds as asyncio tasks off the request path, at most `concurrency` at once."""

    def __init__(self, runner: BuildRunner, concurrency: int) -> None:
        self._runner = runner
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, version_id: int, attempt: int) -> None:
        job_id = f"build:{version_id}:{attempt}"
        if job_id in self._tasks:  # the same attempt enqueued twice runs once
            return
        task = asyncio.create_task(self._run(version_id, attempt), name=job_id)
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _run(self, version_id: int, attempt: int) -> None:
        async with self._slots:
            try:
                await self._runner(version_id, attempt)
            except Exception:
                log.exception("build of version %s (attempt %s) crashed", version_id, attempt)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
