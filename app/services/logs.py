"""Reading build logs: the whole log so far, and a follow that replays then tails."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from app.db.models import User, Version
from app.logbus import Sink, log_key
from app.logbus.memory import BATCH
from app.services.environments import get_version
from app.services.runtime import Runtime

# How long a follower waits in silence before it asks the database whether the build ended
# (it may have ended in a process whose log this bus no longer holds).
IDLE_CHECK = 2.0


async def current_logs(rt: Runtime, versions: Sequence[Version]) -> list[str]:
    """Each version's whole log so far: a running build's from the log bus, the others'
    from the database in one query (environments are fetched without their logs)."""
    live: dict[int, str] = {}
    for version in versions:
        if not version.status.finished:
            lines = await rt.logbus.lines(log_key(version.id, version.attempt))
            if lines is not None:
                live[version.id] = "\n".join(lines)
    wanted = [v.id for v in versions if v.id not in live]
    stored: dict[int, str] = {}
    if wanted:
        stored = dict(await Version.filter(id__in=wanted).values_list("id", "log"))
    return [live[v.id] if v.id in live else stored.get(v.id, "") for v in versions]


def _stored(version: Version) -> list[str]:
    return version.log.split("\n") if version.log else []


async def follow_log(
    rt: Runtime, user: User, version_id: str
) -> AsyncGenerator[tuple[int, str], None]:
    """Every line from line 1, then new lines live; ends when the build has ended.

    The version is looked up (and the caller's right to see it checked) here, before the
    first line is asked for.
    """
    return _lines(_follow(rt, await get_version(user, version_id)))


async def follow_log_batches(
    rt: Runtime, user: User, version_id: str, sink: Sink | None = None
) -> AsyncGenerator[list[tuple[int, str]], None]:
    """`follow_log`, the lines at hand together (a late joiner's replay in a few steps).
    With a `sink`, live lines go there once the follower has every line so far (LogBus's
    follow_batches): the generator yields what the sink refused."""
    return _follow(rt, await get_version(user, version_id), sink)


async def _lines(
    batches: AsyncGenerator[list[tuple[int, str]], None],
) -> AsyncGenerator[tuple[int, str], None]:
    async with aclosing(batches):
        async for batch in batches:
            for item in batch:
                yield item


def _numbered(lines: list[str], start: int) -> list[tuple[int, str]]:
    return list(enumerate(lines, start=start))


async def _follow(
    rt: Runtime, version: Version, sink: Sink | None = None
) -> AsyncGenerator[list[tuple[int, str]], None]:
    if version.status.finished:
        stored = _stored(version)
        for at in range(0, len(stored), BATCH):
            yield _numbered(stored[at : at + BATCH], at + 1)
        return
    sent = 0
    key = log_key(version.id, version.attempt)
    counted: Sink | None = None
    if sink is not None:

        def counted(start: int, texts: list[str]) -> bool:
            nonlocal sent
            if not sink(start, texts):
                return False
            sent = start + len(texts) - 1  # what the stored log's rest starts after
            return True

    async for batch in rt.logbus.follow_batches(key, IDLE_CHECK, counted):
        if batch is not None:
            if batch:
                sent = batch[-1][0]
                yield batch
            continue
        fresh = await Version.get_or_none(id=version.id)
        if fresh is None or fresh.attempt != version.attempt:
            return
        if fresh.status.finished:
            rest = _stored(fresh)[sent:]
            for at in range(0, len(rest), BATCH):
                yield _numbered(rest[at : at + BATCH], sent + at + 1)
            return
