"""In-process log bus for standalone mode, and the fan-out layer of the Redis bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from app.logbus import lines_of

# At most this many lines per batch: a late joiner's replay yields to others between them.
BATCH = 1000


class _Log:
    __slots__ = ("changed", "closed", "interval", "lines", "ticker", "waiting")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False
        self.changed = asyncio.Event()
        self.waiting = 0  # followers waiting for lines
        self.ticker: asyncio.TimerHandle | None = None
        self.interval = 0.0

    def notify(self) -> None:
        # Wake everyone waiting on this event, and give later waiters a fresh one.
        self.changed.set()
        self.changed = asyncio.Event()

    def tick_every(self, idle: float) -> None:
        """Wake the waiting followers every `idle` s, so that each can tell its silence: one
        timer per log, not a timeout per follower and line (with 500 followers, the timeouts
        were a seventh of the process's time)."""
        if self.ticker is not None and idle < self.interval:  # a follower in more haste
            self.stop()
        if self.ticker is None:
            self.interval = idle
            self.ticker = asyncio.get_running_loop().call_later(idle, self._tick, idle)

    def _tick(self, idle: float) -> None:
        self.ticker = None
        if self.waiting:
            self.notify()
            self.tick_every(idle)

    def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None


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
        log = self._logs.pop(key, None)
        if log is not None:
            log.stop()

    async def lines(self, key: str) -> list[str] | None:
        log = self._logs.get(key)
        return None if log is None else list(log.lines)

    def follow(self, key: str, idle: float) -> AsyncIterator[tuple[int, str] | None]:
        return lines_of(self.follow_batches(key, idle))

    async def follow_batches(
        self, key: str, idle: float
    ) -> AsyncIterator[list[tuple[int, str]] | None]:
        log = self._log(key)
        loop = asyncio.get_running_loop()
        sent = 0
        heard = loop.time()  # when this follower last had lines, or said it had none
        while True:
            if sent < len(log.lines):
                while sent < len(log.lines):
                    end = min(len(log.lines), sent + BATCH)
                    yield list(enumerate(log.lines[sent:end], start=sent + 1))
                    sent = end
                heard = loop.time()
            if log.closed:
                return
            if loop.time() - heard >= idle:
                yield None
                heard = loop.time()
                continue
            changed = log.changed
            log.waiting += 1
            log.tick_every(idle)
            try:
                await changed.wait()
            finally:
                log.waiting -= 1

    async def aclose(self) -> None:
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()
        for log in self._logs.values():
            log.stop()
        self._logs.clear()
