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
from typing import Any, Literal

from tortoise import Tortoise
from tortoise.exceptions import OperationalError
from tortoise.migrations.api import migrate

from app import datadir
from app.builders import Builder
from app.db.config import tortoise_config
from app.db.models import User
from app.domain.environments import BaseEnvironment
from app.eventbus import EventBus, MemoryEventBus
from app.logbus import LogBus
from app.services.queue import BuildQueue
from app.services.users import TokenChecks
from app.settings import Settings

Role = Literal["api", "worker"]


@dataclass
class Runtime:
    settings: Settings
    builder: Builder
    logbus: LogBus
    queue: BuildQueue = field(repr=False)
    events: EventBus = field(default_factory=MemoryEventBus, repr=False)
    tokens: TokenChecks = field(default_factory=TokenChecks, repr=False)

    async def base_environments(self) -> list[BaseEnvironment]:
        return await self.builder.base_environments()


def make_builder(settings: Settings) -> Builder:
    if settings.builder == "docker":
        from app.builders.docker import DockerBuilder

        return DockerBuilder(settings)
    from app.builders.local import LocalBuilder

    return LocalBuilder(settings)


def make_event_bus(settings: Settings) -> EventBus:
    """Redis in the distributed mode (events cross processes), else this process's memory."""
    if settings.redis_url:
        from app.eventbus import RedisEventBus

        return RedisEventBus(settings.redis_url, namespace=settings.queue_name)
    return MemoryEventBus()


async def migrate_database(settings: Settings) -> None:
    """Bring the database schema up to date (creates it on an empty database)."""
    datadir.prepare(settings.data_dir)
    datadir.protect_database(settings)
    await migrate(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()
    datadir.protect_database(settings)  # SQLite may have made journal files meanwhile


async def database_exists(settings: Settings) -> bool:
    """Whether the configured database holds envyard's tables (never creates anything)."""
    path = datadir.sqlite_path(settings)
    if path is not None and not path.exists():
        return False
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        await User.exists()
    except OperationalError:  # no such table
        return False
    finally:
        await Tortoise.close_connections()
    return True


@contextlib.asynccontextmanager
async def database(
    settings: Settings, *, migrate: bool = True, create: bool = True
) -> AsyncIterator[None]:
    """Hold the ORM open for the block (CLI commands and workers); migrate first if asked.

    With create=False a database that does not exist yet is refused (DataDirError) instead
    of being made: a command run from the wrong folder must not start a new, empty one.
    """
    if not create and not await database_exists(settings):
        raise datadir.DataDirError(
            f"there is no envyard database in the data directory {settings.data_dir} "
            f"({datadir.shown_url(settings.database_url)}). Run this where the server's data "
            "is (ENVYARD_DATA_DIR, ENVYARD_DATABASE_URL), or pass --create to make a new one."
        )
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
        runtime = Runtime(settings, builder, logbus, queue, make_event_bus(settings))
    else:
        from app.logbus.memory import MemoryLogBus

        async def run(version_id: int, attempt: int) -> None:
            await builds.run_build(runtime, version_id, attempt)

        logbus = MemoryLogBus(settings.log_retention)
        queue = InProcessQueue(run, settings.max_concurrent_builds)
        runtime = Runtime(settings, builder, logbus, queue)
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(builds.watch_stale(runtime), name="stale-build-watchdog")
    ]
    if not settings.redis_url and role == "api":
        tasks.append(asyncio.create_task(builds.recover_builds(runtime), name="recover-builds"))
    builds_here = role == "worker" or not settings.redis_url
    if builds_here:
        tasks.append(asyncio.create_task(builds.watch_leftovers(runtime), name="leftovers"))
    try:
        yield runtime
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await queue.aclose()
        if builds_here:  # what this process's builds, cancelled at shutdown, could not remove
            await builds.reconcile_once(runtime)
        await logbus.aclose()
        await runtime.events.aclose()
        await builder.aclose()
