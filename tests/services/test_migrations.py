"""Migrations upgrade an existing database, keeping its data (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from app.db.config import tortoise_config
from tests.support.server import database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_upgrade_from_the_first_migration_keeps_data(backend, tmp_path):
    for url in database_url(backend, tmp_path):
        config = tortoise_config(url)
        await migrate(config=config, target="models.0001_initial")
        conn = connections.get("default")
        await conn.execute_script(
            "INSERT INTO organization (id, name, created_at) VALUES (1, 'acme', CURRENT_TIMESTAMP);"
            'INSERT INTO "user" (id, organization_id, username, is_admin, token_hash, created_at)'
            " VALUES (1, 1, 'alice', false, 'h', CURRENT_TIMESTAMP);"
            "INSERT INTO environment (id, organization_id, creator_id, short_name, full_name,"
            " python_version, conda_libraries, pip_libraries, status, published_number,"
            " submitted_number, created_at, updated_at)"
            " VALUES (1, 1, 1, 'ml', 'ML', '3.11', '[]', '[\"yard-alpha\"]', 'PUBLISHED', 1, 1,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);"
            "INSERT INTO version (id, environment_id, number, attempt, status, conda_libraries,"
            " pip_libraries, packages, log, created_at)"
            " VALUES (1, 1, 1, 1, 'SUCCEEDED', '[]', '[\"yard-alpha\"]',"
            ' \'[{"name": "Yard_Alpha", "version": "1.0", "manager": "PIP"}]\', \'built\','
            " CURRENT_TIMESTAMP);"
        )
        columns = await _columns(conn, backend)
        assert "heartbeat_at" not in columns
        await Tortoise.close_connections()

        await migrate(config=config)  # to the latest migration
        conn = connections.get("default")
        assert "heartbeat_at" in await _columns(conn, backend)
        rows = await conn.execute_query_dict(
            "SELECT v.number, v.log, v.heartbeat_at, e.short_name FROM version v "
            "JOIN environment e ON e.id = v.environment_id"
        )
        assert rows == [{"number": 1, "log": "built", "heartbeat_at": None, "short_name": "ml"}]
        # Versions built before the package index and the publication time get them.
        installed = await conn.execute_query_dict(
            "SELECT version_id, environment_id, manager, name, version_text, active"
            " FROM installed_package"
        )
        assert [{**row, "active": bool(row["active"])} for row in installed] == [
            {
                "version_id": 1,
                "environment_id": 1,
                "manager": "PIP",
                "name": "yard-alpha",
                "version_text": "1.0",
                "active": True,
            }
        ]
        published = await conn.execute_query_dict(
            "SELECT published_at, submitted_at, updated_at FROM environment"
        )
        assert published[0]["published_at"] is not None
        # The review queue's order: the submission time, from the last change.
        assert published[0]["submitted_at"] == published[0]["updated_at"]
        await Tortoise.close_connections()


async def _columns(conn, backend: str) -> set[str]:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        rows = await conn.execute_query_dict("PRAGMA table_info(version)")
        return {row["name"] for row in rows}
    rows = await conn.execute_query_dict(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'version'"
    )
    return {row["column_name"] for row in rows}


@pytest.mark.parametrize(
    ("query", "expected", "journal"),
    [("", 1, "wal"), ("?synchronous=FULL", 2, "wal"), ("?journal_mode=DELETE", 2, "delete")],
)  # SQLite's PRAGMA synchronous: 1 NORMAL (safe in WAL mode only), 2 FULL
async def test_sqlite_commits_without_fsync_unless_the_url_asks(tmp_path, query, expected, journal):
    await Tortoise.init(config=tortoise_config(f"sqlite://{tmp_path / 'e.db'}{query}"))
    try:
        conn = connections.get("default")
        assert (await conn.execute_query_dict("PRAGMA journal_mode"))[0]["journal_mode"] == journal
        rows = await conn.execute_query_dict("PRAGMA synchronous")
        assert rows[0]["synchronous"] == expected
    finally:
        await Tortoise.close_connections()
