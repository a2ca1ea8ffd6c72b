"""WorkerSettings for `envyard worker`: arq on Redis, builds through the configured builder."""

from __future__ import annotations

import contextlib
from typing import Any

from arq import func
from arq.connections import RedisSettings
from arq.worker import Worker

from app.services.queue import BUILD_JOB
from app.services.runtime import database, open_runtime
from app.settings import Settings
from workers.jobs import build_version


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker, from envyard's settings."""
    if not settings.redis_url:
        raise ValueError("envyard worker needs ENVYARD_REDIS_URL")
    stack = contextlib.AsyncExitStack()

    async def startup(ctx: dict[str, Any]) -> None:
        # The API process migrates the database; workers only use it.
        await stack.enter_async_context(database(settings, migrate=False))
        ctx["runtime"] = await stack.enter_async_context(open_runtime(settings, "worker"))

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


def make_worker(settings: Settings, **overrides: Any) -> Worker:
    return Worker(**{**worker_options(settings), **overrides})
