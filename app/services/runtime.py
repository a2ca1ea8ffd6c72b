"""The shared parts a process needs: settings, database, builder, log bus, build queue.

Standalone (no ENVYARD_REDIS_URL): builds run as tasks in the API process, logs live in its
memory. Distributed: builds are arq jobs run by `envyard worker`, logs go through Redis
Streams. Every process runs the stale-build watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from app.builders import Builder
from app.db.config import tortoise_config
from app.domain.environments import BaseEnvironment
from app.logbus import LogBus
from app.services.queue import BuildQueue
from app.settings import Settings

Role = Literal["api", "worker"]


@dataclass
class Runtime:
    settings: Settings
    builder: Builder
    logbus: LogBus
    queue: BuildQueue = field(repr=False)

    async def base_environments(self) -> list[BaseEnvironment]:
        return await self.builder.base_environments()


def make_builder(settings: Settings) -> Builder:
    if settings.builder == "docker":
        from app.builders.docker import DockerBuilder

        return DockerBuilder(settings)
    from app.builders.local import LocalBuilder

    return LocalBuilder(settings)


async def migrate_database(settings: Settings) -> None:
    """Bring the database schema up to date (creates it on an empty database)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def database(settings: Settings, *, migrate: bool = True) -> AsyncIterator[None]:
    """Hold the ORM open for the block (CLI commands and workers); migrate first if asked."""
    if migrate:
        await migrate_database(settings)
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        yield
    finally:
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, role: Role) -> AsyncIterator[Runtime]:
    """The runtime of an API or worker process. The ORM must already be open."""
    from app.services import builds
    from app.services.queue import ArqQueue, InProcessQueue

    builder = make_builder(settings)
    logbus: LogBus
    queue: BuildQueue
    runtime: Runtime
    if settings.redis_url:
        from app.logbus.redis import RedisLogBus

        logbus = RedisLogBus(
            settings.redis_url,
            namespace=settings.queue_name,
            retention=settings.log_retention,
            max_build_seconds=settings.build_timeout,
        )
        queue = await ArqQueue.connect(settings.redis_url, settings.queue_name)
        runtime = Runtime(settings, builder, logbus, queue)
    else:
        from app.logbus.memory import MemoryLogBus

        async def run(version_id: int, attempt: int) -> None:
            await builds.run_build(runtime, version_id, attempt)

        logbus = MemoryLogBus(settings.log_retention)
        queue = InProcessQueue(run, settings.max_concurrent_builds)
        runtime = Runtime(settings, builder, logbus, queue)
        if role == "api":  # builds of this process's previous life cannot resume
            await builds.fail_interrupted(
                runtime, "the server stopped while this build was running"
            )
    watchdog = asyncio.create_task(builds.watch_stale(runtime), name="stale-build-watchdog")
    try:
        yield runtime
    finally:
        watchdog.cancel()
        await asyncio.gather(watchdog, return_exceptions=True)
        await queue.aclose()
        await logbus.aclose()
        await builder.aclose()
