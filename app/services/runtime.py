"""The shared parts a process needs: settings, database, builder, log bus, build queue."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from app.builders import Builder
from app.db.config import tortoise_config
from app.domain.environments import BaseEnvironment
from app.logbus import LogBus
from app.services.queue import BuildQueue
from app.settings import Settings, SettingsError


@dataclass
class Runtime:
    settings: Settings
    builder: Builder
    logbus: LogBus
    queue: BuildQueue = field(repr=False)

    async def base_environments(self) -> list[BaseEnvironment]:
        return await self.builder.base_environments()


def make_builder(settings: Settings) -> Builder:
    if settings.builder == "local":
        from app.builders.local import LocalBuilder

        return LocalBuilder(settings)
    raise SettingsError(f"ENVYARD_BUILDER={settings.builder!r} is not available in this release")


async def migrate_database(settings: Settings) -> None:
    """Bring the database schema up to date (creates it on an empty database)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate(config=tortoise_config(settings.database_url))
    await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[None]:
    """Migrate, then hold the ORM open for the block (CLI commands and workers)."""
    await migrate_database(settings)
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        yield
    finally:
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def standalone_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Builds run in this process; logs live in its memory. The ORM must already be open."""
    from app.logbus.memory import MemoryLogBus
    from app.services import builds
    from app.services.queue import InProcessQueue

    builder = make_builder(settings)
    runtime: Runtime

    async def run(version_id: int, attempt: int) -> None:
        await builds.run_build(runtime, version_id, attempt)

    queue = InProcessQueue(run, settings.max_concurrent_builds)
    runtime = Runtime(settings, builder, MemoryLogBus(settings.log_retention), queue)
    # Builds that were running when this process last stopped cannot resume.
    await builds.fail_interrupted(runtime, "the server stopped while this build was running")
    try:
        yield runtime
    finally:
        await queue.aclose()
        await runtime.logbus.aclose()
