"""New virtualenvs copied from a template `uv venv` made (app/builders/venvs.py) are what
`uv venv` makes at the same path, and work as one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from uv import find_uv_bin

from app.builders.process import run_child
from app.builders.venvs import VenvTemplates

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


@pytest.mark.parametrize("name", ["it's", "with space", "caf\u00e9", "a$b", "a\\b"])
async def test_a_path_uv_would_quote_is_left_to_uv(tmp_path: Path, name: str) -> None:
    runs = Runs(tmp_path)
    templates = VenvTemplates(UV, tmp_path / "templates", runs)
    prefix = tmp_path / name / "v1"
    assert await templates.make(sys.executable, str(prefix)) is None
    assert not prefix.parent.exists()
    assert runs.count == 0


async def test_an_unfinished_or_damaged_template_is_made_again(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    root = tmp_path / "templates"
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "a"))
    [key] = os.listdir(root)
    (root / key / "venv" / "bin" / "python").unlink()  # damaged
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "b"))
    assert runs.count == 2
    (root / key / "made").unlink()  # a process stopped while uv made it
    (root / key / "venv" / "pyvenv.cfg").write_text("half\n")
    await made(VenvTemplates(UV, root, runs), sys.executable, str(tmp_path / "c"))
    assert runs.count == 3
    assert tree(tmp_path / "c") == tree(tmp_path / "a")
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
    assert templates._key(str(link)) != before
    info = python.stat()
    os.utime(python, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert templates._key(str(python)) != before
    os.utime(python, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert templates._key(str(python)) == before
    python.write_bytes(b"an interpreter, upgraded")
    os.utime(python, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert templates._key(str(python)) != before
