"""A database that fails for a while during a build does not drop the build.

The fault is real: the `version` table is renamed away from under the running build (every
heartbeat, log write and status query on it fails), then renamed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import asyncpg
import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app.db.models import Version
from app.domain.statuses import VersionStatus
from app.services import environments as envs
from app.services.runtime import database, open_runtime
from app.services.users import add_user
from app.settings import Settings
from tests.support.server import database_url


@contextlib.asynccontextmanager
async def version_table_away(url: str) -> AsyncIterator[None]:
    """The `version` table renamed through a connection of its own, for the block."""

    async def rename(old: str, new: str) -> None:
        if url.startswith("sqlite://"):
            with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
                db.execute(f"ALTER TABLE {old} RENAME TO {new}")
                db.commit()
            return
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
        finally:
            await conn.close()

    await rename("version", "version_away")
    try:
        yield
    finally:
        await rename("version_away", "version")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_build_outlives_a_database_outage(backend, tmp_path, index_url, caplog):
    for url in database_url(backend, tmp_path):
        settings = Settings.from_env(
            {
                "ENVYARD_DATA_DIR": str(tmp_path / "data"),
                "ENVYARD_DATABASE_URL": url,
                "ENVYARD_INDEX_URL": index_url,
                "ENVYARD_STALE_BUILD_AFTER": "4",  # heartbeats every second
            }
        )
        EXECUTOR_CACHE.clear()  # see tests/services/test_logs.py
        async with database(settings), open_runtime(settings, "api") as rt:
            alice, _ = await add_user("acme", "alice", admin=False)
            data = envs.EnvironmentData(
                short_name="ml",
                full_name="ML",
                description=None,
                base_environment=None,
                python_version="3.11",
                conda_libraries=[],
                pip_libraries=["yard-slow"],  # its index page answers after 3 s
            )
            env = await envs.create_environment(rt, alice, data)
            version = await envs.build_environment(rt, alice, str(env.id))
            for _ in range(200):
                if (await Version.get(id=version.id)).status is VersionStatus.BUILDING:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the build never started")
            async with version_table_away(url):
                await asyncio.sleep(2.5)  # two heartbeats and several log writes fail
            for _ in range(600):
                built = await Version.get(id=version.id)
                if built.status.finished:
                    break
                await asyncio.sleep(0.05)
            assert built.status is VersionStatus.SUCCEEDED, built.log
            assert built.log.splitlines()[-1] == "Build succeeded: version 1 is ready"
            assert built.log.count("Build of ml version 1 started") == 1
            assert any("the heartbeat of version" in r.getMessage() for r in caplog.records)
