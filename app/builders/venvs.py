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
modification times): a new uv, or an interpreter upgraded in place, makes a new one. A
prefix whose path uv would quote differently from how it is written (a quote, a space, a
non-ASCII letter) is left to `uv venv` itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Paths written in the activation scripts as they are: no quoting uv could apply to them.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._+-]*")
# What every virtualenv has; a template without them is made again.
_REQUIRED = ("pyvenv.cfg", "bin/python")
# Files an interpreter run needs, beside the directories and links: written first.
_TO_RUN = {"pyvenv.cfg"}

RunUv = Callable[[Sequence[str]], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class _Entry:
    path: str  # relative to the virtualenv
    kind: str  # "dir", "link" or "file"
    data: bytes = b""  # a file's content, or a link's target
    mode: int = 0o644


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
        if not _PLAIN_PATH.fullmatch(prefix):
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
        """The template's files, read once a process; made first when missing or unfinished."""
        venv = self._root / key / "venv"
        if not _PLAIN_PATH.fullmatch(str(venv)):  # its path would be quoted in its scripts
            raise OSError(f"the virtualenv template's path {venv} is not a plain path")
        made = self._root / key / "made"  # written once uv has made the whole template
        if not made.exists() or not all(os.path.lexists(venv / name) for name in _REQUIRED):
            made.unlink(missing_ok=True)
            shutil.rmtree(venv, ignore_errors=True)
            venv.parent.mkdir(parents=True, exist_ok=True)
            # made at its final path: the path its scripts hold, replaced in each copy
            made_by = ["venv", "--no-project", "--no-config", "--quiet", "--python", interpreter]
            await self._run_uv([*made_by, str(venv)])
            made.write_text(f"{interpreter}\n")
        return str(venv).encode(), _read(venv)


def _read(venv: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    for directory, dirs, files in os.walk(venv):
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
                info = path.stat()
                entries.append(_Entry(relative, "file", path.read_bytes(), info.st_mode & 0o7777))
    return entries


def _write(entries: list[_Entry], template: bytes, prefix: bytes) -> None:
    """The template's tree at `prefix`, its own path replaced by the prefix's in every file
    and link (a few small files: written on the loop, as a build's other files are)."""
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
            with open(path, "wb") as file:
                file.write(entry.data.replace(template, prefix))
            os.chmod(path, entry.mode)
