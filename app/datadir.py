"""The data directory: one server at a time, readable by its owner only.

A standalone server builds into ENVYARD_DATA_DIR and decides which builds were interrupted;
two servers on one directory would fight over both, so `envyard serve` holds an exclusive
lock on `<data dir>/envyard.lock` for its whole life (the kernel drops it when the process
dies, however it dies). The file says who holds it, for the error the next one prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.settings import Settings

LOCK_FILE = "envyard.lock"


class DataDirError(Exception):
    """The data directory cannot be used as asked; the message says what to do."""


ENVYARD_ENTRIES = ("envyard.db", LOCK_FILE, "envs", "cache")


def prepare(data_dir: Path) -> None:
    """Create the directory if needed; readable by its owner only. A directory that holds
    other things (ENVYARD_DATA_DIR=/tmp, say) keeps its permissions: it is not envyard's."""
    exists = data_dir.is_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    if (
        not exists
        or not any(data_dir.iterdir())
        or any((data_dir / entry).exists() for entry in ENVYARD_ENTRIES)
    ):
        os.chmod(data_dir, 0o700)


def shown_url(url: str) -> str:
    """A database URL fit for a log or an error: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file, when the database is one."""
    url = settings.database_url
    if not url.startswith("sqlite://"):
        return None
    return Path(url.removeprefix("sqlite://").split("?", 1)[0])


def protect_database(settings: Settings) -> None:
    """The SQLite file (and its journal files) readable and writable by the owner only."""
    path = sqlite_path(settings)
    if path is None:
        return
    if not path.exists():  # created here, so that it never exists with wider permissions
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            os.chmod(candidate, 0o600)


@contextlib.contextmanager
def exclusive(data_dir: Path, port: int) -> Iterator[None]:
    """Hold the data directory's lock for the block; DataDirError naming the holder if
    another process has it."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise DataDirError(
                f"another envyard server is using the data directory {data_dir} ({holder}). "
                "Stop it first, or give this one another ENVYARD_DATA_DIR."
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        os.pwrite(
            fd,
            f"pid {os.getpid()} on {socket.gethostname()}, port {port}, since {started}\n".encode(),
            0,
        )
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
