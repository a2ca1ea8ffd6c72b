"""Reading build logs: the whole log so far, and a follow that replays then tails."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.db.models import User, Version
from app.logbus import log_key
from app.services.environments import get_version
from app.services.runtime import Runtime

# How long a follower waits in silence before it asks the database whether the build ended
# (it may have ended in a process whose log this bus no longer holds).
IDLE_CHECK = 2.0


async def current_log(rt: Runtime, version: Version) -> str:
    if version.status.finished:
        return version.log
    lines = await rt.logbus.lines(log_key(version.id, version.attempt))
    return version.log if lines is None else "\n".join(lines)


def _stored(version: Version) -> list[str]:
    return version.log.split("\n") if version.log else []


async def follow_log(rt: Runtime, user: User, version_id: str) -> AsyncIterator[tuple[int, str]]:
    """Every line from line 1, then new lines live; ends when the build has ended."""
    version = await get_version(user, version_id)
    if version.status.finished:
        for number, text in enumerate(_stored(version), start=1):
            yield number, text
        return
    sent = 0
    async for item in rt.logbus.follow(log_key(version.id, version.attempt), IDLE_CHECK):
        if item is not None:
            sent = item[0]
            yield item
            continue
        fresh = await Version.get_or_none(id=version.id)
        if fresh is None or fresh.attempt != version.attempt:
            return
        if fresh.status.finished:
            for number, text in enumerate(_stored(fresh)[sent:], start=sent + 1):
                yield number, text
            return
