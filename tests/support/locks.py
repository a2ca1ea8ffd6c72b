"""Reading a rattler lock file the way a client would: with py-rattler, in a child process
(rattler's runtime can crash an interpreter at exit; pytest's must not be one)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_READ = """
import json, sys
from rattler import LockFile
lock = LockFile.from_path(sys.argv[1])
env = lock.default_environment()
rows = []
for platform in env.platforms():
    for package in env.packages(platform) or []:
        kind = "conda" if package.__class__.__name__.startswith("Conda") else "pypi"
        rows.append({"kind": kind, "name": package.name, "version": str(package.version),
                     "location": package.location})
print(json.dumps({"channels": [str(c) for c in env.channels()], "packages": rows}))
"""


def read_lock(text: str) -> dict[str, Any]:
    """{"channels": [...], "packages": [{"kind", "name", "version", "location"}, ...]}."""
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "envyard.lock"
        path.write_text(text)
        result = subprocess.run(
            [sys.executable, "-c", _READ, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
