"""A build's child processes: started on uvloop without forking the server, their output and
exit read on the loop, and killed by the kernel when the process that started them dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from app.builders import process
from app.builders.local import LocalHost
from app.builders.process import ChildFailed, run_child

ROOT = Path(__file__).resolve().parents[2]

# Says its pid (in the file its argument names, or on its output), then sleeps.
SLEEPER = textwrap.dedent(
    """
    import os, sys, time
    if len(sys.argv) > 1:
        with open(sys.argv[1] + ".part", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".part", sys.argv[1])
    print(os.getpid(), flush=True)
    time.sleep(60)
    """
)

# A server stand-in on uvloop: starts a long child through `how`, and waits.
PARENT = textwrap.dedent(
    """
    import asyncio, os, sys, uvloop
    sys.path.insert(0, {root!r})
    from app.builders import process
    from app.builders.local import LocalHost
    if {fallback!r}:
        process._setpriv = lambda: None
    sleeper = [sys.executable, "-c", {sleeper!r}, {pid_file!r}]

    async def said(line):
        pass

    async def main():
        if {how!r} == "run":
            await LocalHost(dict(os.environ), "/").run(sleeper, said)
        else:
            await process.run_child(sleeper)

    uvloop.run(main())
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    return status != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("fallback", [False, True], ids=["setpriv", "preexec_fn"])
@pytest.mark.parametrize("how", ["run", "run_child"])
def test_a_child_dies_with_the_process_that_started_it(
    how: str, fallback: bool, tmp_path: Path
) -> None:
    if not fallback:
        assert process._setpriv() is not None, "util-linux's setpriv is missing"
    pid_file = tmp_path / "child.pid"
    code = PARENT.format(
        root=str(ROOT), how=how, fallback=fallback, sleeper=SLEEPER, pid_file=str(pid_file)
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    child = 0
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists():
            assert parent.poll() is None, "the parent stopped"
            assert time.monotonic() < deadline, "the child never ran"
            time.sleep(0.02)
        child = int(pid_file.read_text())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while alive(child):
            assert time.monotonic() < deadline, f"child {child} outlived its killed parent"
            time.sleep(0.02)
    finally:
        parent.kill()
        parent.wait()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def test_setpriv_sets_the_signal_without_a_preexec_fn():
    """What makes the children cheap: no preexec_fn (which makes Popen fork the server)."""
    argv, kwargs = process.dying_with_parent(["uv", "venv"])
    assert argv == [process._setpriv(), "--pdeathsig", "KILL", "--", "uv", "venv"]
    assert kwargs == {}


# The server runs on uvloop; the tests' own loop is asyncio's: each test runs on both.
LOOPS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    return LOOPS[request.param]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_output_exit_codes_and_failures(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    async def body() -> None:
        await run_child(["true"])  # the loop opens what it needs on its first child
        fds = open_fds()
        both = "print('out'); import sys; print('err', file=sys.stderr)"
        assert await run_child([sys.executable, "-c", both]) == b"out\nerr\n"
        with pytest.raises(ChildFailed, match=r"exit code 3\): the last words"):
            last_words = "print('first'); print('the last words'); raise SystemExit(3)"
            await run_child([sys.executable, "-c", last_words])
        lines: list[str] = []

        async def emit(line: str) -> None:
            lines.append(line)

        code, last = await LocalHost({}, "/").run(
            ["/bin/sh", "-c", "echo one; echo two >&2; exit 5"], emit
        )
        assert (code, lines, last) == (5, ["one", "two"], deque(["one", "two"]))
        # A missing command is FileNotFoundError, as Popen says it (not setpriv's exit 127)
        with pytest.raises(FileNotFoundError):
            await run_child(["envyard-no-such-command"])
        with pytest.raises(FileNotFoundError):
            await LocalHost({"PATH": "/nowhere"}, "/").run(["sh", "-c", "true"], emit)
        assert open_fds() == fds  # every pipe closed

    run(body())


def test_a_cancelled_step_kills_its_child(run: Callable[[Coroutine[Any, Any, Any]], Any]) -> None:
    pids: list[int] = []

    async def body() -> None:
        await run_child(["true"])
        fds = open_fds()
        started = asyncio.Event()

        async def emit(line: str) -> None:
            pids.append(int(line))
            started.set()

        task = asyncio.create_task(LocalHost({}, "/").run([sys.executable, "-c", SLEEPER], emit))
        async with asyncio.timeout(10):
            await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert open_fds() == fds

    run(body())
    assert not alive(pids[0])


def test_a_step_whose_log_fails_after_its_child_ended_closes_its_pipe(
    run: Callable[[Coroutine[Any, Any, Any]], Any],
) -> None:
    """The child has exited (and been reaped) when the log fails on its last lines."""

    async def body() -> None:
        await run_child(["true"])
        fds = open_fds()

        async def emit(line: str) -> None:
            await asyncio.sleep(0.2)  # the child is gone meanwhile
            raise ConnectionError("the log bus is down")

        for _ in range(5):
            with pytest.raises(ConnectionError):
                await LocalHost({}, "/").run(["/bin/sh", "-c", "echo 1; echo 2"], emit)
        assert open_fds() == fds

    run(body())
