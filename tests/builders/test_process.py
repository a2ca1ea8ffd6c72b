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
from pathlib import Path

import pytest

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


async def test_output_exit_codes_and_failures():
    assert (
        await run_child(
            [sys.executable, "-c", "print('out'); import sys; print('err', file=sys.stderr)"]
        )
        == b"out\nerr\n"
    )
    with pytest.raises(ChildFailed, match=r"exit code 3\): the last words"):
        await run_child(
            [sys.executable, "-c", "print('first'); print('the last words'); raise SystemExit(3)"]
        )
    lines: list[str] = []

    async def emit(line: str) -> None:
        lines.append(line)

    code, last = await LocalHost({}, "/").run(
        ["/bin/sh", "-c", "echo one; echo two >&2; exit 5"], emit
    )
    assert (code, lines, last) == (5, ["one", "two"], deque(["one", "two"]))


async def test_a_cancelled_step_kills_its_child():
    pids: list[int] = []
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
    assert not alive(pids[0])
