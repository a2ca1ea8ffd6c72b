"""The CLI against a real database: users and tokens, existing data only, quiet, documented."""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from app.cli import build_parser
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def envyard(data_dir: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {"ENVYARD_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def token_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_user_add(tmp_path):
    first = envyard(tmp_path, "user", "add", "--create", "--org", "acme", "alice", "--admin")
    token = token_of(first)
    assert token.startswith("ey_") and len(token) > 30
    db = sqlite3.connect(tmp_path / "envyard.db")
    rows = db.execute(
        'SELECT u.username, u.is_admin, u.token_hash, o.name FROM "user" u '
        "JOIN organization o ON o.id = u.organization_id"
    ).fetchall()
    assert [(r[0], bool(r[1]), r[3]) for r in rows] == [("alice", True, "acme")]
    assert token not in rows[0][2] and len(rows[0][2]) == 64  # a SHA-256, not the token

    again = envyard(tmp_path, "user", "add", "--org", "acme", "alice")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = envyard(tmp_path, "user", "add", "--org", "Acme Corp", "bob")
    assert bad.returncode == 2 and "org" in bad.stderr


def test_commands_refuse_a_data_directory_without_a_database(tmp_path):
    elsewhere = tmp_path / "not-the-server"
    for args in (
        ["user", "add", "--org", "acme", "alice"],
        ["user", "token", "--org", "acme", "alice"],
        ["user", "list"],
    ):
        result = envyard(elsewhere, *args)
        assert result.returncode == 2, result
        assert f"no envyard database in the data directory {elsewhere}" in result.stderr
        assert "--create" in result.stderr
        assert result.stdout == ""
    assert not (elsewhere / "envyard.db").exists()  # nothing was made


def test_token_replaces_the_old_one_and_list_shows_users(tmp_path):
    old = token_of(envyard(tmp_path, "user", "add", "--create", "--org", "acme", "alice"))
    dave = token_of(envyard(tmp_path, "user", "add", "--org", "globex", "dave", "--admin"))
    new = token_of(envyard(tmp_path, "user", "token", "--org", "acme", "alice"))
    assert new != old and new.startswith("ey_")
    db = sqlite3.connect(tmp_path / "envyard.db")
    hashes = {row[0] for row in db.execute('SELECT token_hash FROM "user"')}
    assert hashlib.sha256(new.encode()).hexdigest() in hashes
    assert hashlib.sha256(old.encode()).hexdigest() not in hashes
    assert hashlib.sha256(dave.encode()).hexdigest() in hashes  # only alice's changed

    missing = envyard(tmp_path, "user", "token", "--org", "acme", "nobody")
    assert missing.returncode == 2 and "no user 'nobody'" in missing.stderr

    listed = envyard(tmp_path, "user", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[:3] for line in listed.stdout.splitlines()[1:]]
    assert rows == [["acme", "alice", "user"], ["globex", "dave", "admin"]]
    only = envyard(tmp_path, "user", "list", "--org", "globex")
    assert [line.split()[1] for line in only.stdout.splitlines()[1:]] == ["dave"]


def test_commands_say_which_directory_they_use_and_nothing_else(tmp_path):
    result = envyard(tmp_path, "user", "add", "--create", "--org", "acme", "alice")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"envyard: data directory {tmp_path}, database sqlite://{tmp_path / 'envyard.db'}"
    ]
    listed = envyard(tmp_path, "user", "list")
    assert "Tortoise" not in listed.stderr and len(listed.stderr.splitlines()) == 1


def test_every_option_has_help():
    def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action.choices.values():
                    found += parsers(choice)
        return found

    missing = [
        f"{parser.prog}: {action.dest}"
        for parser in parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []
    commands = build_parser()._actions[-1]
    assert isinstance(commands, argparse._SubParsersAction)
    assert all(choice.help for choice in commands._choices_actions)


def test_bad_settings_are_reported(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "user", "add", "--org", "a", "b"],
        capture_output=True,
        text=True,
        env={"ENVYARD_DATA_DIR": str(tmp_path), "ENVYARD_DATABASE_URL": "mysql://x"},
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2 and "ENVYARD_DATABASE_URL" in result.stderr


def test_workers_building_venvs_on_their_own_disks_are_refused(tmp_path):
    base = {
        "ENVYARD_DATA_DIR": str(tmp_path),
        "ENVYARD_REDIS_URL": "redis://127.0.0.1:6379/0",
        "ENVYARD_DATABASE_URL": "postgres://127.0.0.1/test",
    }
    for command in (["worker"], ["serve", "--port", "1"]):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", *command],
            capture_output=True,
            text=True,
            env={**base, "PATH": os.environ["PATH"]},
            cwd=ROOT,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert "ENVYARD_BUILDER=local with ENVYARD_REDIS_URL" in result.stderr
        assert "ENVYARD_SHARED_DATA_DIR=1" in result.stderr
    # With a data directory that every host mounts, the layout is allowed.
    Settings.from_env({**base, "ENVYARD_SHARED_DATA_DIR": "1"})
    Settings.from_env({**base, "ENVYARD_BUILDER": "docker"})
