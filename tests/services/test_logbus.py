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


async def test_finish_is_the_last_line_whatever_a_cancelled_build_still_writes():
    """The API process ends a cancelled build's log while its builder, in another process,
    still writes lines: those come before the last line or are dropped (both buses)."""
    from uuid import uuid4

    from app.logbus.redis import RedisLogBus

    namespace = f"test-{uuid4().hex[:8]}"
    api = RedisLogBus("redis://127.0.0.1:6379/0", namespace=namespace, retention=60,
                      max_build_seconds=60)  # fmt: skip
    worker = RedisLogBus("redis://127.0.0.1:6379/0", namespace=namespace, retention=60,
                         max_build_seconds=60)  # fmt: skip
    buses = [(api, worker), (MemoryLogBus(60),) * 2]
    try:
        for ending, writing in buses * 10:  # a race: several rounds to catch it
            key = f"9:{uuid4().hex[:6]}"
            await writing.append(key, "building")

            async def chatter(writing=writing, key=key) -> None:  # type: ignore[no-untyped-def]
                for i in range(200):
                    await writing.append(key, f"line {i}")

            chatty = asyncio.create_task(chatter())
            await asyncio.sleep(0.005)
            await ending.finish(key, "Build failed: cancelled by alice")
            await chatty
            lines = await ending.lines(key)
            assert lines is not None and lines[-1] == "Build failed: cancelled by alice"
            followed = [i for i in await take(ending, key) if i is not None]  # type: ignore[arg-type]
            assert followed[-1][1] == "Build failed: cancelled by alice"
    finally:
        await api.aclose()
        await worker.aclose()


async def test_extend_appends_lines_at_once_and_nothing_after_the_end():
    bus = MemoryLogBus(retention=60)
    follower = asyncio.create_task(take(bus, "4:1"))
    await asyncio.sleep(0.01)
    bus.extend("4:1", ["a", "b", "c"])
    bus.extend("4:1", [])
    await bus.close("4:1")
    bus.extend("4:1", ["after the end"])
    assert await asyncio.wait_for(follower, 2) == [(1, "a"), (2, "b"), (3, "c")]
    assert await bus.lines("4:1") == ["a", "b", "c"]
    await bus.aclose()


async def test_a_late_joiner_follows_in_batches():
    from app.logbus.memory import BATCH

    bus = MemoryLogBus(retention=60)
    bus.extend("5:1", [f"line {i}" for i in range(1, 2 * BATCH + 501)])
    follower = asyncio.create_task(_batches(bus, "5:1"))
    await asyncio.sleep(0.01)
    await bus.append("5:1", "live")
    await bus.close("5:1")
    batches = await asyncio.wait_for(follower, 2)
    assert [len(b) for b in batches] == [BATCH, BATCH, 500, 1]
    flat = [item for b in batches for item in b]
    assert flat == [(i, f"line {i}") for i in range(1, 2 * BATCH + 501)] + [
        (2 * BATCH + 501, "live")
    ]
    await bus.aclose()


async def _batches(bus: MemoryLogBus, key: str) -> list[list[tuple[int, str]]]:
    return [b async for b in bus.follow_batches(key, 5.0) if b is not None]


async def test_idle_ticks_for_followers_of_different_haste():
    """One timer per log wakes its waiting followers: each says its own silence, the one in
    more haste sooner; none is woken for nothing once the log ends."""
    bus = MemoryLogBus(retention=60)
    slow = asyncio.create_task(take(bus, "4:1", idle=0.4))
    await asyncio.sleep(0.01)
    quick = asyncio.create_task(take(bus, "4:1", idle=0.05))
    await asyncio.sleep(0.3)
    await bus.append("4:1", "at last")
    await bus.close("4:1")
    quick_items, slow_items = await asyncio.wait_for(asyncio.gather(quick, slow), 2)
    assert quick_items.count(None) >= 3 and slow_items.count(None) == 0
    assert quick_items[-1] == slow_items[-1] == (1, "at last")
    assert bus._logs["4:1"].ticker is None or bus._logs["4:1"].waiting == 0
    await bus.aclose()


async def test_steps_emitting_side_by_side_keep_one_order():
    """A build's steps may run side by side (a virtualenv made while uv resolves): the lines
    they emit are stored, numbered and streamed in one order, the same everywhere."""
    from types import SimpleNamespace
    from uuid import uuid4

    from app.logbus.redis import RedisLogBus
    from app.services.builds import _Log

    bus = RedisLogBus("redis://127.0.0.1:6379/0", namespace=f"test-{uuid4().hex[:8]}",
                      retention=60, max_build_seconds=60)  # fmt: skip
    try:
        out = _Log(SimpleNamespace(logbus=bus), SimpleNamespace(id=1, attempt=1))  # type: ignore[arg-type]
        await asyncio.gather(
            *(out.emit(f"{step} {i}\n{step} {i} again") for step in "ab" for i in range(100))
        )
        assert len(out.lines) == 400
        entries = await bus._redis.xrange(bus.stream(out.key))
        assert [int(fields["n"]) for _, fields in entries] == list(range(1, 401))
        assert [fields["text"] for _, fields in entries] == out.lines
    finally:
        await bus.aclose()
