"""Named queries the ORM cannot say in one statement."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from app.db.models import Version
from app.domain.statuses import VersionStatus


async def append_log(version_id: int, attempt: int, lines: list[str]) -> bool:
    """Append lines to a building attempt's stored log in one UPDATE, without reading it.

    False when the attempt is no longer building (cancelled, failed from outside): what
    ended it wrote the whole log already.
    """
    db = Version._meta.db
    text = "\n".join(lines)
    postgres = db.capabilities.dialect == "postgres"
    marks = [f"${n}" for n in range(1, 6)] if postgres else ["?"] * 5
    # `||` concatenates text in both SQLite and PostgreSQL; the first lines need no newline.
    sql = (
        f"UPDATE version SET log = CASE WHEN log = '' THEN {marks[0]} ELSE log || {marks[1]} "
        f"END WHERE id = {marks[2]} AND attempt = {marks[3]} AND status = {marks[4]}"
    )
    updated, _ = await db.execute_query(
        sql, [text, "\n" + text, version_id, attempt, VersionStatus.BUILDING.value]
    )
    return bool(updated)


async def version_rows(env_ids: Sequence[int], columns: Sequence[str]) -> list[Sequence[Any]]:
    """Every version of the environments, by environment then number, holding `columns` of
    the version table, as the driver gives them (sqlite3.Row, asyncpg.Record).

    The ids go as one parameter (a PostgreSQL array, a JSON array SQLite's json_each reads):
    an IN list of thousands of parameters costs more to build through the ORM than the rows
    take to read, and meets the drivers' limits on parameters."""
    known = Version._meta.db_fields
    if not columns or any(c not in known for c in columns):
        raise ValueError(f"not columns of version: {columns}")
    db = Version._meta.db
    selected = ", ".join(f'"{c}"' for c in columns)
    ids = sorted({int(i) for i in env_ids})
    parameter: list[int] | str
    if db.capabilities.dialect == "postgres":
        where, parameter = "environment_id = ANY($1::bigint[])", ids
    else:
        where, parameter = "environment_id IN (SELECT value FROM json_each(?))", json.dumps(ids)
    _, found = await db.execute_query(
        f"SELECT {selected} FROM version WHERE {where} ORDER BY environment_id, number",
        [parameter],
    )
    return cast(list[Sequence[Any]], list(found))


async def make_durable() -> None:
    """Put every commit so far on disk before an action that cannot be undone (removing a
    version's files). SQLite commits with synchronous=NORMAL (app/db/config.py) wait for
    no disk; a checkpoint syncs the write-ahead log first. PostgreSQL commits are durable."""
    db = Version._meta.db
    if db.capabilities.dialect == "sqlite":
        await db.execute_query("PRAGMA wal_checkpoint(PASSIVE)")
