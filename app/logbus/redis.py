"""Build logs through Redis Streams, for API and worker processes on any number of hosts.

The worker XADDs each line to `<namespace>:log:<version>:<attempt>` and an end entry when the
build ends. A reader in each API process XREADs the stream once (BLOCK from the last id it
saw, never `$`) and fans the lines out to that process's subscribers through the in-memory
bus, so 200 subscribers cost one blocking read, and a late joiner replays from line 1.
Streams expire on their own: from the first write (a crashed worker's stream still goes
away) and `retention` seconds after the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from app.logbus import Sink, lines_of
from app.logbus.memory import MemoryLogBus

log = logging.getLogger(__name__)

END = "end"
BLOCK_MS = 1000


class RedisLogBus:
    def __init__(
        self, url: str, *, namespace: str, retention: float, max_build_seconds: float
    ) -> None:
        # socket_timeout=None: blocking XREADs must not hit a client-side timeout.
        self._redis: Redis = Redis.from_url(url, decode_responses=True, socket_timeout=None)
        self._retention = int(retention)
        self._first_ttl = int(max_build_seconds + retention)
        self._numbers: dict[str, int] = {}
        self._local = MemoryLogBus(retention)
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._followers: dict[str, int] = {}
        self._positions: dict[str, str] = {}
        self._namespace = namespace

    def stream(self, key: str) -> str:
        """One deployment's streams live under its namespace (ENVYARD_QUEUE_NAME)."""
        return f"{self._namespace}:log:{key}"

    # -- writing (workers) ---------------------------------------------------------------

    async def append(self, key: str, text: str) -> int:
        number = self._numbers.get(key)
        if number is None:  # first line from this process: continue the stream's numbering
            number = await self._redis.xlen(self.stream(key))
        number += 1
        self._numbers[key] = number
        name = self.stream(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(name, {"n": number, "text": text})
            if number == 1:
                pipe.expire(name, self._first_ttl)
            await pipe.execute()
        return number

    async def finish(self, key: str, text: str) -> None:
        name = self.stream(key)
        async with self._redis.pipeline(transaction=True) as pipe:  # MULTI: one after the other
            pipe.xadd(name, {"n": await self._redis.xlen(name) + 1, "text": text})
            pipe.xadd(name, {END: "1"})
            pipe.expire(name, self._retention)
            await pipe.execute()
        self._numbers.pop(key, None)

    async def close(self, key: str) -> None:
        name = self.stream(key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(name, {END: "1"})
            pipe.expire(name, self._retention)
            await pipe.execute()
        self._numbers.pop(key, None)

    # -- reading (API processes) ---------------------------------------------------------

    async def lines(self, key: str) -> list[str] | None:
        entries = await self._redis.xrange(self.stream(key))
        if not entries:
            return None
        return _texts(entries)

    def follow(self, key: str, idle: float) -> AsyncIterator[tuple[int, str] | None]:
        return lines_of(self.follow_batches(key, idle))

    async def follow_batches(
        self, key: str, idle: float, sink: Sink | None = None
    ) -> AsyncIterator[list[tuple[int, str]] | None]:
        self._followers[key] = self._followers.get(key, 0) + 1
        reader = self._readers.get(key)
        if reader is None or reader.done():
            self._readers[key] = asyncio.create_task(self._read(key), name=f"log-reader:{key}")
        try:
            async for batch in self._local.follow_batches(key, idle, sink):
                yield batch
        finally:
            self._followers[key] -= 1
            if self._followers[key] == 0:
                del self._followers[key]

    async def _read(self, key: str) -> None:
        """Copy the stream into the local bus until its end entry or its last follower leaves."""
        name = self.stream(key)
        last = self._positions.get(key, "0-0")
        try:
            while key in self._followers:
                response = await self._redis.xread({name: last}, block=BLOCK_MS, count=500)
                for _, entries in response:
                    texts: list[str] = []
                    for entry_id, fields in entries:
                        last = entry_id
                        if END in fields:
                            self._local.extend(key, texts)
                            await self._local.close(key)
                            self._positions.pop(key, None)
                            return
                        texts.append(fields["text"])
                    self._local.extend(key, texts)
                self._positions[key] = last
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading build log %s failed", key)
            self._positions[key] = last

    async def aclose(self) -> None:
        for task in self._readers.values():
            task.cancel()
        for task in self._readers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._readers.clear()
        await self._local.aclose()
        await self._redis.aclose()


def _texts(entries: list[Any]) -> list[str]:
    """The lines of a stream up to its end entry (a cancelled build may write after it)."""
    out: list[str] = []
    for _, fields in entries:
        if END in fields:
            break
        out.append(fields["text"])
    return out
