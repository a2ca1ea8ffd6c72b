"""A pip-only lock file written in this process (lock.pip_lock_text) is the one rattler writes,
byte for byte, and rattler reads it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.builders.lock import lock_request, pip_lock_text

VERSIONS = [
    "1.0", "1", "2024.1", "1.10", "1.0.post1", "1!2.0", "1.0+local.7", "0.9", "1.0a1",
    "10.0.0", "1.0.dev0", "3.14159", "0", "1.2.3.4.5", "2.0.1",
]  # fmt: skip


def _rattler(tmp_path: Path, request: dict[str, object]) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    subprocess.run(
        [sys.executable, "-m", "app.builders.conda_runner", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(str(request["result"])).read_text()


@pytest.mark.parametrize("count", [0, 1, len(VERSIONS)])
def test_the_same_as_rattler(tmp_path: Path, count: int) -> None:
    index = "http://127.0.0.1:9/simple"
    pip = [
        # Unsorted, in other spellings, with and without a known file.
        (f"Pkg_{chr(122 - i)}", v, f"http://h:1/f/p{i}-{v}.whl#sha256=ff" if i % 3 else "")
        for i, v in enumerate(VERSIONS[:count])
    ]
    ours = pip_lock_text(pip, index)
    request = lock_request((), pip, index, None, str(tmp_path / "rattler.lock"))
    assert ours == _rattler(tmp_path, request)
    (tmp_path / "ours.lock").write_text(ours)
    read = {"action": "read", "lock": str(tmp_path / "ours.lock")}
    (tmp_path / "read.json").write_text(json.dumps(read))
    out = subprocess.run(
        [sys.executable, "-m", "app.builders.conda_runner", str(tmp_path / "read.json")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert sorted((p["name"], p["version"]) for p in found["pypi"]) == sorted(
        (f"pkg-{chr(122 - i)}", v) for i, v in enumerate(VERSIONS[:count])
    )
