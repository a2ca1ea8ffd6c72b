"""New virtual environments as copies of one `uv venv` per interpreter.

`uv venv` costs a local build a child process and 10-15 ms on this kind of machine, for a
dozen small files: every virtualenv uv makes for one interpreter is the same tree but for
its own path, written into five activation scripts. The local builder makes each
interpreter's virtualenv once with uv (its template, in the cache directory) and then
writes that tree at each new prefix, the template's path replaced by the prefix's.

What running the interpreter needs (the directories, pyvenv.cfg, the links to Python) is
written first; the activation scripts and the rest are written in a thread meanwhile, while
uv already works in the new virtualenv (each file costs this kind of disk 0.1-0.3 ms).

A template is keyed by the uv executable and the interpreter (their paths, sizes and
modification times): a new uv, or an interpreter upgraded in place, makes a new one. Each
is made in a directory of its own and then named in its key's `made` file (an atomic
rename), and never removed: processes sharing the cache (workers on a shared data
directory) may make one at the same time, each then uses a whole one. A prefix whose path
uv would write differently (a quote, a space, a non-ASCII letter, `//` or `/./`) is left
to `uv venv` itself. Files get the modes `uv venv` would give them now (this process's
umask), not the template's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Paths written in the activation scripts as they are: no quoting uv could apply to them.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._+-]*")
# What every virtualenv has; a template without them is not used.
_REQUIRED = ("pyvenv.cfg", "bin/python")
# Files an interpreter run needs, beside the directories and links: written first.
_TO_RUN = {"pyvenv.cfg"}

RunUv = Callable[[Sequence[str]], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str  # relative to the virtualenv
    kind: str  # "dir", "link" or "file"
    data: bytes = b""  # a file's content, or a link's target
    executable: bool = False


class VenvTemplates:
    """Writes new virtualenvs from templates `uv venv` made, one per interpreter."""

    def __init__(self, uv: str, root: Path, run_uv: RunUv) -> None:
        self._uv = uv
        self._root = root  # where the templates are kept (the cache directory)
        self._run_uv = run_uv  # runs uv with these arguments, raising if it fails
        self._loaded: dict[str, tuple[bytes, list[_Entry]]] = {}
        self._making: dict[str, asyncio.Lock] = {}

    async def make(self, interpreter: str, prefix: str) -> asyncio.Future[None] | None:
        """Write a new virtualenv of `interpreter` at `prefix` (which may exist, holding a
        build's own files): what running its Python needs before returning, the rest in a
        thread, the future returned (await it before the build ends); None, having written
        nothing, where uv must make it itself."""
        if not (_PLAIN_PATH.fullmatch(prefix) and os.path.normpath(prefix) == prefix):
            return None
        if not os.path.isabs(interpreter):  # run by uv from another working directory
            return None
        key = self._key(interpreter)
        loaded = self._loaded.get(key)
        if loaded is None:
            async with self._making.setdefault(key, asyncio.Lock()):
                loaded = self._loaded.get(key) or await self._load(key, interpreter)
                self._loaded[key] = loaded
        template, entries = loaded
        first = [e for e in entries if e.kind != "file" or e.path in _TO_RUN]
        _write(first, template, prefix.encode())
        rest = [e for e in entries if e not in first]
        return asyncio.ensure_future(asyncio.to_thread(_write, rest, template, prefix.encode()))

    def _key(self, interpreter: str) -> str:
        said = []
        for path in (self._uv, interpreter):
            info = os.stat(path)  # the interpreter's real file: an upgrade changes it
            said.append(f"{path}:{os.path.realpath(path)}:{info.st_size}:{info.st_mtime_ns}")
        return hashlib.sha256("\n".join(said).encode()).hexdigest()[:20]

    async def _load(self, key: str, interpreter: str) -> tuple[bytes, list[_Entry]]:
        """The template's files, read once a process; made first when there is none yet."""
        made = self._root / key / "made"  # names the finished template's directory
        try:
            venv: Path | None = self._root / key / made.read_text().strip() / "venv"
        except FileNotFoundError:
            venv = None
        if venv is not None:
            try:
                return str(venv).encode(), _read(venv)
            except OSError:  # damaged since: made again, beside it
                pass
        venv = self._root / key / uuid.uuid4().hex / "venv"
        if not _PLAIN_PATH.fullmatch(str(venv)):  # its path would be quoted in its scripts
            raise OSError(f"the virtualenv template's path {venv} is not a plain path")
        venv.parent.mkdir(parents=True)
        try:
            # made at its final path: the path its scripts hold, replaced in each copy
            made_by = ["venv", "--no-project", "--no-config", "--quiet", "--python", interpreter]
            await self._run_uv([*made_by, str(venv)])
            entries = _read(venv)
        except BaseException:
            shutil.rmtree(venv.parent, ignore_errors=True)
            raise
        naming = made.with_name(f"made-{venv.parent.name}")
        naming.write_text(f"{venv.parent.name}\n")
        os.replace(naming, made)  # the last one made is the one named; each is whole
        return str(venv).encode(), entries


def _read(venv: Path) -> list[_Entry]:
    """A template's entries; OSError if it is not a whole virtualenv."""
    entries: list[_Entry] = []

    def failed(error: OSError) -> None:
        raise error

    for directory, dirs, files in os.walk(venv, onerror=failed):
        base = Path(directory)
        for name in sorted(dirs + files):
            path = base / name
            relative = str(path.relative_to(venv))
            if path.is_symlink():
                entries.append(_Entry(relative, "link", os.readlink(path).encode()))
                if name in dirs:
                    dirs.remove(name)  # lib64 -> lib: walked as lib
            elif path.is_dir():
                entries.append(_Entry(relative, "dir"))
            else:
                executable = bool(path.stat().st_mode & 0o111)
                entries.append(_Entry(relative, "file", path.read_bytes(), executable))
    missing = set(_REQUIRED) - {e.path for e in entries}
    if missing:
        raise OSError(f"the virtualenv template {venv} has no {', '.join(sorted(missing))}")
    return entries


def _write(entries: list[_Entry], template: bytes, prefix: bytes) -> None:
    """The template's tree at `prefix`, its own path replaced by the prefix's in every file
    and link; a file's mode is what this process's umask makes of 0o666 (0o777 executable),
    as for `uv venv`."""
    root = prefix.decode()
    os.makedirs(root, exist_ok=True)
    for entry in entries:
        path = os.path.join(root, entry.path)
        if entry.kind == "dir":
            os.makedirs(path, exist_ok=True)
        elif entry.kind == "link":
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(entry.data.replace(template, prefix).decode(), path)
        else:
            if os.path.lexists(path):
                os.unlink(path)  # a new file: created with this umask's mode
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            fd = os.open(path, flags, 0o777 if entry.executable else 0o666)
            with open(fd, "wb") as file:
                file.write(entry.data.replace(template, prefix))
