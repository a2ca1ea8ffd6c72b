"""Small real wheels and a PEP 503 simple index serving them on 127.0.0.1.

Tests (and bench/) never depend on the public index: every package a build installs here is
made by `make_wheel` and served by `LocalIndex`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import os
import shutil
import socket
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    requires: Sequence[str] = ()
    extras: dict[str, Sequence[str]] = field(default_factory=dict)
    # Served as a source distribution whose metadata reads well and whose build fails: a
    # resolution takes it, an install cannot.
    build_fails: bool = False

    @property
    def module(self) -> str:
        return canonicalize_name(self.name).replace("-", "_")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def make_wheel(directory: Path, dist: Dist) -> Path:
    """A pure-Python wheel whose module exposes __version__."""
    module = dist.module
    stem = f"{module}-{dist.version}"
    info = f"{stem}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {dist.name}",
        f"Version: {dist.version}",
        *(f"Requires-Dist: {r}" for r in dist.requires),
    ]
    for extra, reqs in dist.extras.items():
        metadata.append(f"Provides-Extra: {extra}")
        metadata += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    files = {
        f"{module}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: envyard-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


BACKEND = """\
def _fail(*args, **kwargs):
    raise RuntimeError("this package's build fails on purpose")
build_wheel = build_sdist = _fail
"""


def make_failing_sdist(directory: Path, dist: Dist) -> Path:
    """A source distribution with static metadata (PKG-INFO, Metadata 2.2: a resolver reads
    it as is) whose in-tree build backend fails."""
    stem = f"{dist.module}-{dist.version}"
    metadata = [
        "Metadata-Version: 2.2",
        f"Name: {dist.name}",
        f"Version: {dist.version}",
        *(f"Requires-Dist: {r}" for r in dist.requires),
    ]
    files = {
        "PKG-INFO": "\n".join(metadata) + "\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n',
        "backend.py": BACKEND,
    }
    path = directory / f"{stem}.tar.gz"
    with tarfile.open(path, "w:gz") as sdist:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{stem}/{name}")
            info.size, info.mtime = len(data), 0
            sdist.addfile(info, io.BytesIO(data))
    return path


def write_index(root: Path, dists: Iterable[Dist], wheels: Iterable[Path] = ()) -> Path:
    """Wheels under root/files (made from `dists`, and the given wheel files), a simple
    index under root/simple; returns root."""
    files, simple = root / "files", root / "simple"
    files.mkdir(parents=True, exist_ok=True)
    by_project: dict[str, list[Path]] = {}
    for dist in dists:
        make = make_failing_sdist if dist.build_fails else make_wheel
        by_project.setdefault(canonicalize_name(dist.name), []).append(make(files, dist))
    for wheel in wheels:
        placed = files / wheel.name
        try:
            os.link(wheel, placed)
        except OSError:  # another file system
            shutil.copyfile(wheel, placed)
        by_project.setdefault(parse_wheel_filename(wheel.name)[0], []).append(placed)
    project_links = []
    for project, placed_wheels in sorted(by_project.items()):
        (simple / project).mkdir(parents=True, exist_ok=True)
        links = "".join(
            f'<a href="../../files/{html.escape(w.name)}#sha256='
            f'{hashlib.sha256(w.read_bytes()).hexdigest()}">{html.escape(w.name)}</a>\n'
            for w in placed_wheels
        )
        (simple / project / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
        project_links.append(f'<a href="{project}/">{project}</a>\n')
    (simple / "index.html").write_text(f"<html><body>\n{''.join(project_links)}</body></html>\n")
    return root


SLOW_PROJECT = "yard-slow"
SLOW_SECONDS = 3.0
# Project pages that answer late, so that builds needing them stay in progress that long.
SLOW_PROJECTS = {SLOW_PROJECT: SLOW_SECONDS, "yard-sloth": 8.0}
# A dependency with a 70,000-character name: uv's error about it is a line that long.
LONG_NAME = "yard-" + "x" * 70_000


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files; the pages of SLOW_PROJECTS answer late, every time: they tell installers
    not to keep them (an index page uv kept as fresh makes a "slow" build fast)."""

    def do_GET(self) -> None:
        for project, seconds in SLOW_PROJECTS.items():
            if f"/simple/{project}/" in self.path:
                time.sleep(seconds)
        super().do_GET()

    def end_headers(self) -> None:
        if any(f"/simple/{project}/" in self.path for project in SLOW_PROJECTS):
            self.send_header("Cache-Control", "no-store, no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    """Installers open many connections at once: with the default listen queue (5), the
    ones that overflow it wait for the client's SYN retry, a second each time. Clients also
    close streams they have read enough of (uv reads a wheel's METADATA and stops): not an
    error worth a traceback."""

    request_queue_size = 128

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve the files under `root` on 127.0.0.1 (quietly); yields the base URL."""
    server = _Server(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_index(root: Path) -> Iterator[str]:
    """Serve `root` on 127.0.0.1; yields the simple index URL."""
    with serve_directory(root) as url:
        yield f"{url}simple/"


# The packages the tests and benchmarks use.
TEN = [Dist(f"yard-pkg{i}", "1.0") for i in range(10)]
CATALOGUE = [
    *TEN,
    Dist("yard-alpha", "1.0"),
    Dist("yard-alpha", "2.0"),
    Dist("yard-beta", "1.0", requires=["yard-alpha>=1.0"]),
    # Its newest release needs the newest yard-alpha; the one before does not.
    Dist("yard-zeta", "1.0", requires=["yard-alpha>=1.0"]),
    Dist("yard-zeta", "2.0", requires=["yard-alpha>=2.0"]),
    Dist("yard-unbuilt", "1.0", requires=["yard-alpha>=1.0"], build_fails=True),
    # The Python distribution of the test channel's conda package yardc-alpha, on PyPI too.
    Dist("yardc-alpha", "2.0"),
    Dist("yard-gamma", "0.5", extras={"fast": ["yard-delta"]}),
    Dist("yard-delta", "3.1"),
    Dist("yard-extra", "1.0"),
    Dist(SLOW_PROJECT, "1.0"),
    Dist("yard-sloth", "1.0"),
    Dist("yard-long", "1.0", requires=[LONG_NAME]),
]
