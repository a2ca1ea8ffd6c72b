"""WorkerSettings for `envyard worker`: arq on Redis, builds through the configured builder."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.worker import Worker

from app.db.models import Version
from app.domain.statuses import VersionStatus
from app.services.queue import BUILD_JOB
from app.services.runtime import Runtime, database, open_runtime
from app.settings import Settings
from workers.jobs import build_version

log = logging.getLogger(__name__)


async def is_building(version_id: int, attempt: int | None) -> bool:
    """Whether that attempt (any, when not known) of the version is still BUILDING."""
    query = Version.filter(id=version_id, status=VersionStatus.BUILDING)
    if attempt is not None:
        query = query.filter(attempt=attempt)
    return await query.exists()


async def reconcile_once(runtime: Runtime) -> None:
    try:
        await runtime.builder.reconcile(is_building)
    except Exception:
        log.exception("removing what stopped builds left behind failed; trying again")


async def reconcile_builds(runtime: Runtime) -> None:
    """At start and every heartbeat interval: what killed builds left behind is removed.

    A build cancelled or declared stale while its worker lives removes its own container;
    this loop is for builds whose worker was killed (it finds them once the watchdog has
    failed them), on any worker sharing the build's engine.
    """
    while True:
        await reconcile_once(runtime)
        await asyncio.sleep(runtime.settings.heartbeat_interval)


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker, from envyard's settings."""
    if not settings.redis_url:
        raise ValueError("envyard worker needs ENVYARD_REDIS_URL")
    stack = contextlib.AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        # The API process migrates the database; workers only use it.
        await stack.enter_async_context(database(settings, migrate=False))
        runtime = ctx["runtime"] = await stack.enter_async_context(open_runtime(settings, "worker"))
        # Unwound before the runtime closes: stop the loop, then one last pass, which removes
        # what this worker's builds, cancelled at shutdown, could not.
        stack.push_async_callback(reconcile_once, runtime)
        reconciler = asyncio.create_task(reconcile_builds(runtime), name="reconcile-builds")
        stack.push_async_callback(_cancel, reconciler)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await stack.aclose()

    return {
        "functions": [
            # A retry finds the version no longer QUEUED and does nothing: run_build is
            # idempotent; a build interrupted by a dead worker is failed by the watchdog.
            func(build_version, name=BUILD_JOB, max_tries=3)
        ],
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "allow_abort_jobs": True,
        "max_jobs": settings.max_concurrent_builds,
        # run_build enforces ENVYARD_BUILD_TIMEOUT with a clear log line; arq's is a backstop.
        "job_timeout": settings.build_timeout + 60,
        "keep_result": 60,
        "poll_delay": 0.1,
    }


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def make_worker(settings: Settings, **overrides: Any) -> Worker:
    return Worker(**{**worker_options(settings), **overrides})
