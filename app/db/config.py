"""Tortoise configuration from Settings."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.config_generator import expand_db_url

MODELS = "app.db.models"
MIGRATIONS = "app.db.migrations"
# tortoise's asyncpg client, extended to replace the connections PostgreSQL ends.
POSTGRES_ENGINE = "app.db.asyncpg_client"


def tortoise_config(database_url: str) -> dict[str, Any]:
    if database_url.startswith("postgresql://"):
        database_url = "postgres://" + database_url.removeprefix("postgresql://")
    connection: str | dict[str, Any] = database_url
    if database_url.startswith("postgres://"):
        connection = {**expand_db_url(database_url), "engine": POSTGRES_ENGINE}
    elif database_url.startswith("sqlite://"):
        connection = expand_db_url(database_url)
        # In WAL mode (tortoise's default) NORMAL is SQLite's own advice: no corruption on a
        # crash, and a commit writes the log without waiting for the disk (FULL's fsync per
        # commit, three on a build's path); an operating system crash or power loss may undo
        # the last commits (retention makes its marks durable before removing files). A URL's own
        # ?synchronous=FULL keeps every commit on disk; another journal_mode keeps FULL.
        credentials = connection["credentials"]
        if str(credentials.get("journal_mode", "")).upper() == "WAL":  # NORMAL is safe there
            credentials.setdefault("synchronous", "NORMAL")
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": [MODELS],
                "migrations": MIGRATIONS,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }
