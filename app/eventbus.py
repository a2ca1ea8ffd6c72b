"""Environment events, live: every committed event reaches the dashboards subscribed to
`environmentEvents`, in whatever API process they are connected to.

Standalone: one process, an in-memory fan-out. Distributed: the process that committed the
event (an API, a worker, `envyard gc`) XADDs it to the Redis stream `<namespace>:events`
(capped at STREAM_LENGTH entries); each API process with subscribers reads the stream with
one blocking XREAD from the last id it saw, so a dropped Redis connection loses nothing
that the stream still holds, and fans the events out to its subscribers.

Events are dictionaries of plain values (Event.payload). A subscriber that falls more than
QUEUE_SIZE events behind is ended with Lagging rather than silently missing events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from redis.asyncio import Redis

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
STREAM_LENGTH = 10_000
BLOCK_MS = 1000

Payload = dict[str, Any]


class Lagging(Exception):
    """A subscriber read too slowly and missed events."""


class EventBus(Protocol):
    async def publish(self, payload: Payload) -> None: ...

    def subscribe(self) -> AsyncIterator[Payload]:
        """Every event published from now on, until the caller stops iterating."""
        ...

    async def aclose(self) -> None: ...


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Payload] = asyncio.Queue(QUEUE_SIZE)
        self.lagging = False


class MemoryEventBus:
    """One process's subscribers."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def publish(self, payload: Payload) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber.queue.put_nowait(payload)
            except asyncio.QueueFull:
                subscriber.lagging = True

    def open(self) -> _Subscriber:
        """Register a subscriber now: it gets every event published from here on."""
        subscriber = _Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    async def drain(self, subscriber: _Subscriber) -> AsyncIterator[Payload]:
        try:
            while True:
                if subscriber.lagging and subscriber.queue.empty():
                    raise Lagging(
                        f"this subscription fell more than {QUEUE_SIZE} events behind; "
                        "subscribe again and read Query.events for what it missed"
                    )
                yield await subscriber.queue.get()
        finally:
            self.close(subscriber)

    def close(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def subscribe(self) -> AsyncIterator[Payload]:
        return self.drain(self.open())

    async def aclose(self) -> None:
        self._subscribers.clear()


class RedisEventBus:
    """Events through one Redis stream, for processes on any number of hosts."""

    def __init__(self, url: str, *, namespace: str) -> None:
        # socket_timeout=None: blocking XREADs must not hit a client-side timeout.
        self._redis: Redis = Redis.from_url(url, decode_responses=True, socket_timeout=None)
        self._stream = f"{namespace}:events"
        self._local = MemoryEventBus()
        self._reader: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def publish(self, payload: Payload) -> None:
        await self._redis.xadd(
            self._stream,
            {"event": json.dumps(payload)},
            maxlen=STREAM_LENGTH,
            approximate=True,
        )

    async def subscribe(self) -> AsyncIterator[Payload]:
        subscriber = self._local.open()
        if self._reader is None or self._reader.done():
            self._started = asyncio.Event()
            self._reader = asyncio.create_task(self._read(), name="event-reader")
        try:
            # The reader knows where the stream ends before this subscription counts as
            # started: what is published after this point reaches it.
            await self._started.wait()
        except BaseException:
            self._local.close(subscriber)
            raise
        async for payload in self._local.drain(subscriber):
            yield payload

    async def _read(self) -> None:
        last = "$"
        while True:
            try:
                if last == "$":  # where the stream ends now: the first read starts there
                    entries = await self._redis.xrevrange(self._stream, count=1)
                    last = entries[0][0] if entries else "0-0"
                    self._started.set()
                response = await self._redis.xread({self._stream: last}, block=BLOCK_MS)
                for _, items in response:
                    for entry_id, fields in items:
                        last = entry_id
                        await self._local.publish(json.loads(fields["event"]))
                if self._local.subscribers == 0:
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: read on from the last id when it is back
                log.warning("reading the event stream failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self._local.aclose()
        await self._redis.aclose()
