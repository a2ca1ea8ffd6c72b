"""In-process log bus for standalone mode, and the fan-out layer of the Redis bus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from app.logbus import Sink, lines_of

log = logging.getLogger(__name__)

# At most this many lines per batch: a late joiner's replay yields to others between them.
BATCH = 1000


class _Direct:
    """A follower that is given new lines as they come (its `sink`), its task asleep until
    the sink refuses some, the log ends, or the follower is due to tell its silence."""

    __slots__ = ("heard", "sent", "sink", "woken")

    def __init__(self, sent: int, sink: Sink, heard: float, woken: asyncio.Future[None]) -> None:
        self.sent, self.sink, self.heard, self.woken = sent, sink, heard, woken

    def wake(self) -> None:
        if not self.woken.done():
            self.woken.set_result(None)


class _Log:
    __slots__ = ("changed", "closed", "direct", "interval", "lines", "ticker", "waiting")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.closed = False
        self.changed = asyncio.Event()
        self.waiting = 0  # followers waiting for lines
        self.direct: set[_Direct] = set()  # followers given lines as they come
        self.ticker: asyncio.TimerHandle | None = None
        self.interval = 0.0

    def add(self, texts: list[str]) -> None:
        """New lines: handed to the direct followers here (each sink writes them to its
        connection at once, no task woken), and the waiting followers woken. A sink that
        refuses them (or fails) wakes its follower, which then takes them itself."""
        start = len(self.lines) + 1
        self.lines.extend(texts)
        if self.direct:
            now = asyncio.get_running_loop().time()
            failed = False
            for follower in list(self.direct):
                if follower.woken.done():  # cancelled, its task not yet run: no more lines
                    self.direct.discard(follower)
                    continue
                try:
                    taken = follower.sink(start, texts)
                except Exception:
                    if not failed:  # once, not once per follower
                        log.exception("a log follower's sink failed")
                    failed, taken = True, False
                if taken:
                    follower.sent, follower.heard = len(self.lines), now
                else:
                    self.direct.discard(follower)
                    follower.wake()
        self.notify()

    def notify(self) -> None:
        # Wake everyone waiting on this event, and give later waiters a fresh one.
        self.changed.set()
        self.changed = asyncio.Event()

    def end(self) -> None:
        self.closed = True
        for follower in self.direct:
            follower.wake()
        self.direct.clear()
        self.notify()

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
        if self.waiting or self.direct:
            self.notify()
            now = asyncio.get_running_loop().time()
            for follower in [f for f in self.direct if now - f.heard >= idle]:
                self.direct.discard(follower)  # due to tell its silence
                follower.wake()
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
        log.add([text])
        return len(log.lines)

    def extend(self, key: str, texts: list[str]) -> None:
        """Append lines at once, waking the followers once (the Redis bus copies its stream
        here in batches)."""
        log = self._log(key)
        if texts and not log.closed:
            log.add(texts)

    async def finish(self, key: str, text: str) -> None:
        await self.append(key, text)  # no await inside: nothing runs between the two
        await self.close(key)

    async def close(self, key: str) -> None:
        log = self._log(key)
        log.end()
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
        self, key: str, idle: float, sink: Sink | None = None
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
            if sink is not None:  # caught up: new lines go to the sink as they come
                follower = _Direct(sent, sink, heard, loop.create_future())
                log.direct.add(follower)
                log.tick_every(idle)
                try:
                    await follower.woken
                finally:
                    log.direct.discard(follower)
                sent, heard = follower.sent, follower.heard
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
