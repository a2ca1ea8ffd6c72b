"""The CLI against a real database: user add prints the token last; tokens are stored hashed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def envyard(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"ENVYARD_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_user_add(tmp_path):
    first = envyard(tmp_path, "user", "add", "--org", "acme", "alice", "--admin")
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip().splitlines()[-1]
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
