"""Named queries the ORM cannot say in one statement."""

from __future__ import annotations

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
