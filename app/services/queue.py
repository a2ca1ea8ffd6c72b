"""Where builds wait for a builder: tasks in this process (standalone) or arq jobs (distributed).

Jobs are enqueued by name, so the API never imports worker code. A job's id is fixed per
version attempt (`<namespace>:build:<version id>:<attempt>`): the same attempt enqueued twice
runs once, and a rebuilt failed version (a new attempt) is not blocked by the kept result of
the last. The namespace (ENVYARD_QUEUE_NAME) matters because arq's job keys are global to a
Redis database: without it two deployments (or test runs) sharing Redis block each other's
version ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job

log = logging.getLogger(__name__)

BuildRunner = Callable[[int, int], Awaitable[None]]
BUILD_JOB = "build_version"


def job_id(version_id: int, attempt: int, namespace: str = "") -> str:
    return f"{namespace}{':' if namespace else ''}build:{version_id}:{attempt}"


class BuildQueue(Protocol):
    async def enqueue(self, version_id: int, attempt: int) -> None: ...

    async def cancel(self, version_id: int, attempt: int) -> None: ...

    async def aclose(self) -> None: ...


class InProcessQueue:
    """Runs builds as asyncio tasks off the request path, at most `concurrency` at once."""

    def __init__(self, runner: BuildRunner, concurrency: int) -> None:
        self._runner = runner
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def enqueue(self, version_id: int, attempt: int) -> None:
        name = job_id(version_id, attempt)
        if name in self._tasks:  # the same attempt enqueued twice runs once
            return
        task = asyncio.create_task(self._run(version_id, attempt), name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda _: self._tasks.pop(name, None))

    async def _run(self, version_id: int, attempt: int) -> None:
        async with self._slots:
            try:
                await self._runner(version_id, attempt)
            except Exception:
                log.exception("build of version %s (attempt %s) crashed", version_id, attempt)

    async def cancel(self, version_id: int, attempt: int) -> None:
        task = self._tasks.get(job_id(version_id, attempt))
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({task}, timeout=10)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class ArqQueue:
    """Builds as arq jobs in Redis, run by `envyard worker` processes on any host."""

    def __init__(self, pool: ArqRedis, queue_name: str) -> None:
        self._pool = pool
        self._queue_name = queue_name

    @classmethod
    async def connect(cls, redis_url: str, queue_name: str) -> ArqQueue:
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue_name)
        return cls(pool, queue_name)

    async def enqueue(self, version_id: int, attempt: int) -> None:
        name = job_id(version_id, attempt, self._queue_name)
        job = await self._pool.enqueue_job(BUILD_JOB, version_id, attempt, _job_id=name)
        if job is None:  # this very attempt is already queued: that job will build it
            log.info("job %s exists already; not enqueued again", name)

    async def cancel(self, version_id: int, attempt: int) -> None:
        name = job_id(version_id, attempt, self._queue_name)
        job = Job(name, self._pool, _queue_name=self._queue_name)
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            await job.abort(timeout=5)

    async def aclose(self) -> None:
        await self._pool.aclose()
