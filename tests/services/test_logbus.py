"""The in-memory log bus: replay from line 1, live follow, end, late joiners."""

from __future__ import annotations

import asyncio

import pytest

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


class Sink:
    """A follower's sink that takes lines while `open`, recording them."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, str]] = []
        self.open = True
        self.fail = False

    def __call__(self, start: int, texts: list[str]) -> bool:
        if self.fail:
            raise RuntimeError("a sink failing")
        if not self.open:
            return False
        self.taken += list(enumerate(texts, start=start))
        return True


async def _sunk(bus: MemoryLogBus, key: str, sink: Sink, idle: float = 5.0) -> list:
    return [b async for b in bus.follow_batches(key, idle, sink)]


async def test_a_caught_up_follower_is_given_lines_at_its_sink():
    """A follower with every line so far is given new ones at its sink, in the task that
    adds them (nothing woken); what the sink refuses, or a failing sink's, it yields itself,
    and after that its sink takes lines again; every line once, in order."""
    bus = MemoryLogBus(retention=60)
    await bus.append("6:1", "before")
    sink = Sink()
    follower = asyncio.create_task(_sunk(bus, "6:1", sink))
    await asyncio.sleep(0.01)  # it yielded line 1, and waits caught up
    [direct] = bus._logs["6:1"].direct
    bus.extend("6:1", ["a", "b"])
    assert sink.taken == [(2, "a"), (3, "b")]  # at once, before any task ran
    assert not direct.woken.done() and direct.sent == 3  # its task left asleep
    assert direct.heard >= asyncio.get_running_loop().time() - 0.01  # not silent
    await bus.append("6:1", "c")
    assert sink.taken[-1] == (4, "c")
    sink.open = False
    bus.extend("6:1", ["refused", "too"])
    await asyncio.sleep(0.01)  # the follower takes them itself, then waits again
    sink.open = True
    assert len(bus._logs["6:1"].direct) == 1  # registered again once caught up
    await bus.append("6:1", "taken again")
    assert sink.taken[-1] == (7, "taken again")
    sink.fail = True
    await bus.append("6:1", "after a failure")
    await asyncio.sleep(0.01)
    sink.fail = False
    await bus.close("6:1")
    batches = await asyncio.wait_for(follower, 2)
    assert batches == [[(1, "before")], [(5, "refused"), (6, "too")], [(8, "after a failure")]]
    taken = sorted(sink.taken + [line for batch in batches for line in batch])
    assert taken == list(enumerate(
        ["before", "a", "b", "c", "refused", "too", "taken again", "after a failure"], start=1
    ))  # fmt: skip
    await bus.aclose()


async def test_a_cancelled_follower_is_given_no_more_lines():
    """Cancelled (a client completing its subscription), a follower's sink takes nothing
    more, even before its task has run to leave the log."""
    bus = MemoryLogBus(retention=60)
    sink = Sink()
    follower = asyncio.create_task(_sunk(bus, "8:1", sink))
    await asyncio.sleep(0.01)
    bus.extend("8:1", ["one"])
    follower.cancel()
    bus.extend("8:1", ["after the cancellation"])
    assert sink.taken == [(1, "one")] and not bus._logs["8:1"].direct
    with pytest.raises(asyncio.CancelledError):
        await follower
    await bus.aclose()


async def test_a_follower_at_its_sink_still_tells_its_silence():
    bus = MemoryLogBus(retention=60)
    sink = Sink()
    follower = asyncio.create_task(_sunk(bus, "7:1", sink, idle=0.05))
    await asyncio.sleep(0.02)
    bus.extend("7:1", ["one"])  # taken: its silence starts again
    await asyncio.sleep(0.2)
    await bus.close("7:1")
    batches = await asyncio.wait_for(follower, 2)
    assert sink.taken == [(1, "one")]
    assert batches and all(b is None for b in batches)  # silences only, the line not again
    await bus.aclose()
