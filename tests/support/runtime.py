"""An API runtime on a fresh database of either backend, for in-process tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tortoise.backends.base.executor import EXECUTOR_CACHE

from app.services.runtime import Runtime, database, open_runtime
from app.settings import Settings
from tests.support.server import database_url


@asynccontextmanager
async def api_runtime(backend: str, tmp_path: Path, **env: str) -> AsyncIterator[Runtime]:
    for url in database_url(backend, tmp_path):
        settings = Settings.from_env(
            {"ENVYARD_DATA_DIR": str(tmp_path / "data"), "ENVYARD_DATABASE_URL": url, **env}
        )
        EXECUTOR_CACHE.clear()  # see tests/services/test_logs.py
        async with database(settings), open_runtime(settings, "api") as rt:
            yield rt
