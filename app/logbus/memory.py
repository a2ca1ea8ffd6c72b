"""In-process log bus for standalone mode, and the fan-out layer of the Redis bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from app.logbus import lines_of

# At most this many lines per batch: a late joiner's replay yields to others between them.
BATCH = 1000


class _Log:
    __slots__ = ("changed", "closed", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False
        self.changed = asyncio.Event()

    def notify(self) -> None:
        # Wake everyone waiting on this event, and give later waiters a fresh one.
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryLogBus:
    """Keeps each log in memory while it is written and `retention` seconds after it ends."""

    def __init__(self, retention: float = 300.0) -> None:
        self._logs: dict[str, _Log] = {}
        self._retention = retention
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    def _log(self, key: str) -> _Log:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log()
        return log

    async def append(self, key: str, text: str) -> int:
        log = self._log(key)
        if log.closed:  # a cancelled build's last words arrive after its end: drop them
            return len(log.lines)
        log.lines.append(text)
        log.notify()
        return len(log.lines)

    def extend(self, key: str, texts: list[str]) -> None:
        """Append lines at once, waking the followers once (the Redis bus copies its stream
        here in batches)."""
        log = self._log(key)
        if texts and not log.closed:
            log.lines.extend(texts)
            log.notify()

    async def finish(self, key: str, text: str) -> None:
        await self.append(key, text)  # no await inside: nothing runs between the two
        await self.close(key)

    async def close(self, key: str) -> None:
        log = self._log(key)
        log.closed = True
        log.notify()
        loop = asyncio.get_running_loop()
        if key in self._expiry:
            self._expiry[key].cancel()
        self._expiry[key] = loop.call_later(self._retention, self._forget, key)

    def _forget(self, key: str) -> None:
        self._expiry.pop(key, None)
        self._logs.pop(key, None)

    async def lines(self, key: str) -> list[str] | None:
        log = self._logs.get(key)
        return None if log is None else list(log.lines)

    def follow(self, key: str, idle: float) -> AsyncIterator[tuple[int, str] | None]:
        return lines_of(self.follow_batches(key, idle))

    async def follow_batches(
        self, key: str, idle: float
    ) -> AsyncIterator[list[tuple[int, str]] | None]:
        log = self._log(key)
        sent = 0
        while True:
            while sent < len(log.lines):
                end = min(len(log.lines), sent + BATCH)
                yield list(enumerate(log.lines[sent:end], start=sent + 1))
                sent = end
            if log.closed:
                return
            changed = log.changed
            try:
                # Not wait_for, which makes a task per wait: a line wakes every follower.
                async with asyncio.timeout(idle):
                    await changed.wait()
            except TimeoutError:
                yield None

    async def aclose(self) -> None:
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        self._logs.clear()
