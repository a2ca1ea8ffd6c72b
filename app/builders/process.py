"""Short child processes of a build step: run to their end, output captured."""

from __future__ import annotations

import asyncio
import ctypes
import signal
import sys

from app.builders import BuildFailed

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before it runs (preexec_fn): the kernel kills it when this process dies.

    A killed server or worker must not leave an installer running: it would go on writing
    into a prefix that the next attempt at the same version has just cleared.
    """
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ChildFailed(BuildFailed):
    """A child process ended with an error; the message holds its last line."""


async def run_child(
    command: list[str],
    data: bytes = b"",
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> bytes:
    """Run a short child process to its end and return its output; ChildFailed saying its
    last line when it fails. Killed with the caller when the caller is cancelled."""
    # No standard input unless there is something to say: writing to a child that already
    # exited fails (asyncio: "the handler is closed"), and a quick one may exit first.
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE if data else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        env=env,
        preexec_fn=die_with_parent,
    )
    try:
        out, _ = await proc.communicate(data or None)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        said = out.decode(errors="replace").strip().splitlines()
        raise ChildFailed(
            f"{' '.join(command[:3])} failed (exit code {proc.returncode}): "
            f"{said[-1] if said else 'it said nothing'}"
        )
    return out
