"""Build logs: publish, replay from line 1, follow live.

A log is keyed by version id and attempt (a rebuilt failed version starts a fresh log).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

# Where a follower may have new lines written as they come, in the task that adds them:
# (number of the first line, their texts) -> whether it took them all (else the follower
# is woken and takes them itself). It must not block.
Sink = Callable[[int, list[str]], bool]


def log_key(version_id: int, attempt: int) -> str:
    return f"{version_id}:{attempt}"


class LogBus(Protocol):
    async def append(self, key: str, text: str) -> int:
        """Add one line; returns its number (1, 2, 3, ...). Lines after close are dropped."""
        ...

    async def close(self, key: str) -> None:
        """Mark the log ended; followers finish after the last line."""
        ...

    async def finish(self, key: str, text: str) -> None:
        """Add a last line and mark the log ended, at once: a line another process (a build
        being cancelled) appends meanwhile comes before both or is dropped."""
        ...

    async def lines(self, key: str) -> list[str] | None:
        """Every line so far, or None when this bus holds no such log."""
        ...

    def follow(self, key: str, idle: float) -> AsyncIterator[tuple[int, str] | None]:
        """Lines from 1, then live, until closed; yields None after `idle` s of silence."""
        ...

    def follow_batches(
        self, key: str, idle: float, sink: Sink | None = None
    ) -> AsyncIterator[list[tuple[int, str]] | None]:
        """`follow`, the lines at hand together (a late joiner's replay in a few steps).
        With a `sink`, a follower that has every line so far is given the next ones there,
        as they come, instead of yielding them; what the sink refuses is yielded."""
        ...

    async def aclose(self) -> None: ...


async def lines_of(
    batches: AsyncIterator[list[tuple[int, str]] | None],
) -> AsyncIterator[tuple[int, str] | None]:
    """`follow` made of `follow_batches`: each line, and None for each silence."""
    async for batch in batches:
        if batch is None:
            yield None
            continue
        for item in batch:
            yield item
