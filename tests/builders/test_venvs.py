"""New virtualenvs copied from a template `uv venv` made (app/builders/venvs.py) are what
`uv venv` makes at the same path, and work as one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from uv import find_uv_bin

from app.builders import BuildFailed, BuildRequest
from app.builders.local import LocalHost
from app.builders.process import run_child
from app.builders.steps import Plan, Steps, Tools
from app.builders.venvs import VenvTemplates
from app.settings import Settings

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "UV_PYTHON_DOWNLOADS": "never"}
UV = find_uv_bin()


class Runs:
    """uv run for the templates, counted."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.count = 0

    async def __call__(self, args: list[str]) -> bytes:
        self.count += 1
        return await run_child([UV, *args], cwd=str(self.cwd), env=ENV)


async def made(templates: VenvTemplates, interpreter: str, prefix: str) -> None:
    """A copy written: what running it needs at once, the rest by the future returned."""
    writing = await templates.make(interpreter, prefix)
    assert writing is not None
    python = Path(prefix) / "bin" / "python"
    assert python.is_symlink() and (Path(prefix) / "pyvenv.cfg").is_file()
    assert (Path(prefix) / "lib").is_dir()
    await writing
    assert (Path(prefix) / "bin" / "activate").is_file()


def tree(root: Path) -> dict[str, tuple[str, str | bytes, int]]:
    """Every entry under root: its kind, content (a link's target) and mode, with root's
    own path written as ROOT."""
    own = str(root).encode()
    found: dict[str, tuple[str, str | bytes, int]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            key = str(path.relative_to(root))
            mode = path.lstat().st_mode & 0o7777
            if path.is_symlink():
                found[key] = ("link", os.readlink(path).replace(str(root), "ROOT"), 0)
            elif path.is_dir():
                found[key] = ("dir", b"", mode)
            else:
                found[key] = ("file", path.read_bytes().replace(own, b"ROOT"), mode)
    return found


async def run(*command: str | Path) -> str:
    return (await run_child([str(c) for c in command], cwd="/", env=ENV)).decode()


def uv_venv(prefix: Path) -> None:
    command = [UV, "venv", "-q", "--no-project", "--no-config", "--python", sys.executable]
    subprocess.run([*command, str(prefix)], check=True, env=ENV, cwd=prefix.parent)


async def test_a_copy_is_what_uv_venv_makes_at_that_path(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    templates = VenvTemplates(UV, tmp_path / "templates", runs)
    copies = [tmp_path / "envs" / "7" / f"v{n}" for n in (1, 2)]
    for prefix in copies:
        await made(templates, sys.executable, str(prefix))
    assert runs.count == 1  # one uv venv for the interpreter, then copies
    by_uv = tmp_path / "by-uv" / "v1"
    by_uv.parent.mkdir()
    uv_venv(by_uv)
    expected = tree(by_uv)
    assert {kind for kind, _, _ in expected.values()} == {"dir", "link", "file"}
    assert any(b"ROOT" in content for kind, content, _ in expected.values() if kind == "file")
    for prefix in copies:
        assert tree(prefix) == expected
        # a virtualenv of its own: its prefix, its site-packages, the interpreter's version
        said = (
            await run(prefix / "bin" / "python", "-c", "import sys; print(sys.prefix, sys.version)")
        ).split(" ", 1)
        assert said == [str(prefix), sys.version + "\n"]
        shell = f". {prefix}/bin/activate && echo $VIRTUAL_ENV && command -v python"
        activated = (await run("bash", "-c", shell)).split()
        assert activated == [str(prefix), str(prefix / "bin" / "python")]


async def test_a_copy_keeps_the_builds_own_files_in_the_prefix(tmp_path: Path) -> None:
    templates = VenvTemplates(UV, tmp_path / "templates", Runs(tmp_path))
    prefix = tmp_path / "v1"
    (prefix / ".envyard").mkdir(parents=True)
    (prefix / ".envyard" / "requirements.txt").write_text("yard-alpha\n")
    await made(templates, sys.executable, str(prefix))
    assert (prefix / ".envyard" / "requirements.txt").read_text() == "yard-alpha\n"
    assert (prefix / "pyvenv.cfg").is_file()


QUOTED = ["it's", "with space", "caf\u00e9", "a$b", "a\\b", "a//b", "a/./b"]


@pytest.mark.parametrize("name", QUOTED)
async def test_a_path_uv_would_write_otherwise_is_left_to_uv(tmp_path: Path, name: str) -> None:
    runs = Runs(tmp_path)
    templates = VenvTemplates(UV, tmp_path / "templates", runs)
    prefix = f"{tmp_path}/{name}/v1"
    assert await templates.make(sys.executable, prefix) is None
    assert not (tmp_path / name.split("/")[0]).exists()
    assert runs.count == 0
    # and an interpreter named relative to this directory (uv runs elsewhere)
    assert await templates.make("python3", str(tmp_path / "v1")) is None


async def test_plain_characters_are_written_as_uv_writes_them(tmp_path: Path) -> None:
    templates = VenvTemplates(UV, tmp_path / "templates", Runs(tmp_path))
    prefix = tmp_path / "a+b-c_d.e" / "v1"
    await made(templates, sys.executable, str(prefix))
    by_uv = tmp_path / "x+b-c_d.e" / "v1"
    by_uv.parent.mkdir()
    uv_venv(by_uv)
    assert tree(prefix) == tree(by_uv)


async def test_files_get_the_modes_of_this_umask_as_with_uv(tmp_path: Path) -> None:
    """A template made under one umask gives later copies the modes of theirs."""
    root = tmp_path / "templates"
    await made(VenvTemplates(UV, root, Runs(tmp_path)), sys.executable, str(tmp_path / "a"))
    before = os.umask(0o077)
    try:
        await made(VenvTemplates(UV, root, Runs(tmp_path)), sys.executable, str(tmp_path / "b"))
        (tmp_path / "u").mkdir()
        uv_venv(tmp_path / "u" / "b")
    finally:
        os.umask(before)
    assert tree(tmp_path / "b") == tree(tmp_path / "u" / "b")
    assert (tmp_path / "b" / "pyvenv.cfg").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "a" / "pyvenv.cfg").stat().st_mode & 0o777 == 0o644


async def test_processes_making_one_template_at_once_each_use_a_whole_one(
    tmp_path: Path,
) -> None:
    """Workers sharing a data directory may all find no template of a new interpreter."""
    root = tmp_path / "templates"
    makers = [VenvTemplates(UV, root, Runs(tmp_path)) for _ in range(5)]
    prefixes = [str(tmp_path / "envs" / f"v{n}") for n in range(len(makers))]
    pairs = zip(makers, prefixes, strict=True)
    await asyncio.gather(*(made(m, sys.executable, p) for m, p in pairs))
    (tmp_path / "u").mkdir()
    uv_venv(tmp_path / "u" / "v0")
    expected = tree(tmp_path / "u" / "v0")
    for prefix in prefixes:
        assert tree(Path(prefix)) == expected, prefix
    # the last one named is the one a new process uses
    runs = Runs(tmp_path)
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "envs" / "v9"))
    assert runs.count == 0


async def test_an_unfinished_or_damaged_template_is_made_again(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    root = tmp_path / "templates"
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "a"))
    [key] = os.listdir(root)
    named = root / key / (root / key / "made").read_text().strip() / "venv"
    (named / "bin" / "python").unlink()  # damaged
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "b"))
    assert runs.count == 2
    (root / key / "made").unlink()  # a process stopped while uv made it: never named
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "c"))
    assert runs.count == 3
    assert tree(tmp_path / "c") == tree(tmp_path / "a") == tree(tmp_path / "b")
    # a finished one is read as it is, by a new process too
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "d"))
    assert runs.count == 3


def test_an_interpreter_changed_in_place_gets_a_new_template(tmp_path: Path) -> None:
    """An upgrade replaces the interpreter's file: its size or time changes the key (and
    so the template); a link to it is keyed by where it leads too."""
    templates = VenvTemplates(UV, tmp_path / "templates", Runs(tmp_path))
    python = tmp_path / "python3.11"
    python.write_bytes(b"an interpreter")
    link = tmp_path / "python3"
    link.symlink_to(python)
    before = templates._key(str(python))
    assert templates._key(str(python)) == before
    # a link re-pointed to another file of the same size and time (another version)
    other = tmp_path / "python3.12"
    other.write_bytes(b"an interpreter")
    info = python.stat()
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    through_link = templates._key(str(link))
    link.unlink()
    link.symlink_to(other)
    assert templates._key(str(link)) != through_link
    os.utime(python, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert templates._key(str(python)) != before
    os.utime(python, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert templates._key(str(python)) == before
    python.write_bytes(b"an interpreter, upgraded")
    os.utime(python, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert templates._key(str(python)) != before


class SlowTemplates(VenvTemplates):
    """The real templates, the writing of a copy's activation scripts made slower (or
    failing), as a slow or full disk would."""

    def __init__(self, root: Path, runs: Runs, fail: bool = False) -> None:
        super().__init__(UV, root, runs)
        self.fail = fail
        self.finished: list[str] = []
        self.slowed = asyncio.Event()  # a copy's last files are being written

    async def make(self, interpreter: str, prefix: str) -> asyncio.Future[None] | None:
        writing = await super().make(interpreter, prefix)
        assert writing is not None

        async def slower() -> None:
            await writing
            self.slowed.set()
            await asyncio.to_thread(time.sleep, 0.5)
            if self.fail:
                raise OSError(28, "No space left on device")
            self.finished.append(prefix)

        return asyncio.ensure_future(slower())


def steps_for(tmp_path: Path, templates: VenvTemplates) -> tuple[Steps, BuildRequest, Plan]:
    settings = Settings.from_env({"ENVYARD_DATA_DIR": str(tmp_path / "data")})
    prefix = str(tmp_path / "envs" / "v1")
    tools = Tools(uv=UV, conda=(), conda_cache=str(tmp_path), work=f"{prefix}/.envyard")
    host = LocalHost({**ENV, "UV_CACHE_DIR": str(tmp_path / "cache")}, str(tmp_path))
    lines: list[str] = []

    async def emit(text: str) -> None:
        lines.append(text)

    request = BuildRequest(1, 1, "org", "e", 1, "3.11", None, (), ())
    plan = Plan(prefix=prefix, channels=(), interpreter=sys.executable)
    return Steps(settings, host, tools, emit, templates), request, plan


async def test_a_build_ends_only_once_its_new_virtualenv_is_written(tmp_path: Path) -> None:
    templates = SlowTemplates(tmp_path / "templates", Runs(tmp_path))
    steps, request, plan = steps_for(tmp_path, templates)
    result = await steps.make(request, plan)  # nothing to install: the virtualenv alone
    assert templates.finished == [plan.prefix]
    assert result.location == plan.python and result.packages == []


async def test_a_cancelled_build_still_waits_for_its_files(tmp_path: Path) -> None:
    """Its next attempt removes the prefix: nothing of this one may still be writing."""
    templates = SlowTemplates(tmp_path / "templates", Runs(tmp_path))
    steps, request, plan = steps_for(tmp_path, templates)
    build = asyncio.ensure_future(steps.make(request, plan))
    await templates.slowed.wait()
    build.cancel()
    with pytest.raises(asyncio.CancelledError):
        await build
    assert templates.finished == [plan.prefix]


async def test_a_virtualenv_whose_files_cannot_be_written_fails_its_build(
    tmp_path: Path,
) -> None:
    templates = SlowTemplates(tmp_path / "templates", Runs(tmp_path), fail=True)
    steps, request, plan = steps_for(tmp_path, templates)
    with pytest.raises(BuildFailed, match="No space left on device"):
        await steps.make(request, plan)
