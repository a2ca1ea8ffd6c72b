"""The in-memory log bus: replay from line 1, live follow, end, late joiners."""

from __future__ import annotations

import asyncio

from app.logbus.memory import MemoryLogBus


async def take(bus: MemoryLogBus, key: str, idle: float = 5.0) -> list[tuple[int, str] | None]:
    return [item async for item in bus.follow(key, idle)]


async def test_follow_replays_then_tails_then_ends():
    bus = MemoryLogBus(retention=60)
    await bus.append("1:1", "first")
    follower = asyncio.create_task(take(bus, "1:1"))
    await asyncio.sleep(0.01)
    await bus.append("1:1", "second")
    await bus.append("1:1", "third")
    assert not follower.done()  # still following: the log has not ended
    await bus.close("1:1")
    assert await asyncio.wait_for(follower, 2) == [(1, "first"), (2, "second"), (3, "third")]
    # Late joiner after the end: every line once, in order, then done.
    assert await take(bus, "1:1") == [(1, "first"), (2, "second"), (3, "third")]
    assert await bus.lines("1:1") == ["first", "second", "third"]
    await bus.aclose()


async def test_follower_before_the_first_line_and_idle_ticks():
    bus = MemoryLogBus(retention=60)
    follower = asyncio.create_task(take(bus, "2:1", idle=0.05))
    await asyncio.sleep(0.12)
    await bus.append("2:1", "late start")
    await bus.close("2:1")
    items = await asyncio.wait_for(follower, 2)
    assert None in items  # silence is reported so callers can check the database
    assert [i for i in items if i is not None] == [(1, "late start")]
    await bus.aclose()


async def test_retention_forgets_ended_logs():
    bus = MemoryLogBus(retention=0.05)
    await bus.append("3:1", "x")
    await bus.close("3:1")
    await asyncio.sleep(0.1)
    assert await bus.lines("3:1") is None
    await bus.aclose()
