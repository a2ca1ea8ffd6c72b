"""A build's child processes: started cheaply, killed with the process that started them.

The server runs on uvloop, whose subprocesses are forked through libuv: 4.5 ms of a 100 MB
server's loop per child, three children a build. `start` spawns with subprocess.Popen on
the loop instead, which uses vfork (0.5 ms), and reads the child's output pipe and waits
for its exit (a pidfd) with the loop's readers. A preexec_fn would make Popen fork as well
(11 ms): the parent-death signal is set by util-linux's setpriv, which then runs the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from app.builders import BuildFailed

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before it runs (preexec_fn): the kernel kills it when this process dies."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@functools.cache
def _setpriv() -> str | None:
    """util-linux's setpriv, when it can set the parent-death signal (2.33 and later)."""
    path = shutil.which("setpriv") if sys.platform == "linux" else None
    if path is None:
        return None
    try:
        said = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in said.stdout else None


def dying_with_parent(command: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """A child's command, and the Popen arguments, that make the kernel kill it when this
    process dies: a killed server or worker must not leave an installer running, which would
    go on writing into a prefix the next attempt at the same version has just cleared."""
    setpriv = _setpriv()
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", *command], {}
    preexec: Callable[[], None] = die_with_parent
    return list(command), {"preexec_fn": preexec}


class Child:
    """A running child process: its output (both streams, read here from the pipe's one
    descriptor, which `stop` closes once) and its exit."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        self._popen = popen
        self._out = popen.stdout
        os.set_blocking(self._out.fileno(), False)

    async def read(self, size: int = 65536) -> bytes:
        """The next output the child wrote, at most `size` bytes; b"" at its end."""
        fd = self._out.fileno()
        while True:
            try:
                return os.read(fd, size)
            except BlockingIOError:
                await _ready(fd)

    async def read_all(self) -> bytes:
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return b"".join(parts)

    async def wait(self) -> int:
        if self._popen.poll() is None:
            await _exited(self._popen)
        return self._popen.wait()

    async def stop(self) -> None:
        """Kill the child if it still runs, reap it, and close its output. Safe to repeat."""
        try:
            if self._popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._popen.kill()
                await asyncio.shield(self.wait())
        finally:
            self._out.close()


def start(
    command: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None
) -> Child:
    """Start `command` dying with this process, its standard input empty; call `stop` when
    done with it. A missing command raises FileNotFoundError, as Popen does."""
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    if shutil.which(command[0], path=path) is None:
        raise FileNotFoundError(errno.ENOENT, "No such executable file", command[0])
    argv, dying = dying_with_parent(command)
    # On the loop: a vfork, half a millisecond (the module docstring says why).
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        **dying,
    )
    return Child(popen)


async def _exited(popen: subprocess.Popen[bytes]) -> None:
    """Until the child has exited (not reaped yet: Popen.wait does that)."""
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):  # not Linux 5.3+: a thread waits for it
        await asyncio.to_thread(popen.wait)
        return
    try:
        await _ready(pidfd)
    finally:
        os.close(pidfd)


async def _ready(fd: int) -> None:
    """Until `fd` is readable (output, its end, or a pidfd's exit)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


class ChildFailed(BuildFailed):
    """A child process ended with an error; the message holds its last line."""


async def run_child(
    command: list[str], cwd: str | None = None, env: dict[str, str] | None = None
) -> bytes:
    """Run a short child process to its end and return its output; ChildFailed saying its
    last line when it fails. Killed with the caller when the caller is cancelled."""
    child = start(command, cwd=cwd, env=env)
    try:
        out = await child.read_all()
        code = await child.wait()
    finally:
        await child.stop()
    if code != 0:
        said = out.decode(errors="replace").strip().splitlines()
        raise ChildFailed(
            f"{' '.join(command[:3])} failed (exit code {code}): "
            f"{said[-1] if said else 'it said nothing'}"
        )
    return out
