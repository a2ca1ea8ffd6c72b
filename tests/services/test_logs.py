"""Environments are read without their logs; `current_logs` loads them, live or stored."""

from __future__ import annotations

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app.db.models import Environment, Version
from app.domain.statuses import EnvironmentStatus, VersionStatus
from app.logbus import log_key
from app.services import logs
from app.services.environments import environments_query, get_environment
from app.services.rows import versions_of
from app.services.runtime import database, open_runtime
from app.services.users import add_user
from app.settings import Settings
from tests.support.server import database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_logs_load_only_when_asked(backend, tmp_path):
    for url in database_url(backend, tmp_path):
        settings = Settings.from_env(
            {"ENVYARD_DATA_DIR": str(tmp_path / "data"), "ENVYARD_DATABASE_URL": url}
        )
        # Tortoise caches each table's INSERT per connection name, not per SQL dialect; this
        # process opens SQLite and PostgreSQL in turn, both named "default".
        EXECUTOR_CACHE.clear()
        async with database(settings), open_runtime(settings, "api") as rt:
            alice, _ = await add_user("acme", "alice", admin=False)
            env = await Environment.create(
                organization_id=alice.organization_id,
                creator=alice,
                short_name="ml",
                full_name="ML",
                python_version="3.11",
                status=EnvironmentStatus.IN_PROGRESS,
            )
            long_log = "\n".join(f"line {i}" for i in range(10_000))
            done = await Version.create(
                environment=env, number=1, status=VersionStatus.SUCCEEDED, log=long_log
            )
            running = await Version.create(
                environment=env, number=2, status=VersionStatus.BUILDING, attempt=2
            )
            quiet = await Version.create(environment=env, number=3, status=VersionStatus.QUEUED)
            await rt.logbus.append(log_key(running.id, 2), "Collecting yard-alpha")
            await rt.logbus.append(log_key(running.id, 1), "an earlier attempt's line")

            [listed] = await (await environments_query(alice))
            assert listed.id == env.id
            fetched = await get_environment(alice, env.id)
            for versions in (
                sorted(fetched.versions, key=lambda v: v.number),
                (await versions_of([listed.id]))[0],  # what listings select, batched
            ):
                assert [v.number for v in versions] == [1, 2, 3]
                assert all(not hasattr(v, "log") for v in versions)  # not read
                assert versions[1].attempt == 2 and versions[0].environment_id == env.id

            loaded = await logs.current_logs(rt, versions)
            assert loaded == [long_log, "Collecting yard-alpha", ""]
            assert await logs.current_logs(rt, [quiet, done]) == ["", long_log]
