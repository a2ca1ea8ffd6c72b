"""The tests' local conda channel: solved and installed with py-rattler, served over HTTP.

rattler runs in a child process (STACK-NOTES: after its async calls an interpreter can crash
at exit), so pytest itself never loads rattler's runtime.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.conda import build_channel

# Solve `specs` against `channel`, then install into `prefix` (unless "solve_only"). With
# "keep", the prefix's records are the locked packages: they stay where possible. Prints
# one JSON object: the solved packages and timings, or the error.
RATTLER = r"""
import asyncio, json, os, sys, time
from pathlib import Path

from rattler import Gateway, MatchSpec, PrefixRecord, SourceConfig, install, solve


def prefix_records(prefix):
    meta = prefix / "conda-meta"
    return [PrefixRecord.from_path(p) for p in sorted(meta.glob("*.json"))] if meta.is_dir() else []


async def main(request):
    prefix, cache = Path(request["prefix"]), Path(request["cache"])
    installed = prefix_records(prefix)
    specs = [MatchSpec(spec) for spec in request["specs"]]
    gateway = Gateway(
        cache_dir=cache / "repodata", default_config=SourceConfig(sharded_enabled=False)
    )
    started = time.monotonic()
    records = await solve(
        [request["channel"]],
        specs,
        gateway=gateway,
        platforms=["linux-64", "noarch"],
        locked_packages=installed if request.get("keep") else None,
    )
    result = {
        "solved": {r.name.normalized: str(r.version) for r in records},
        "solve_seconds": time.monotonic() - started,
    }
    if not request.get("solve_only"):
        started = time.monotonic()
        await install(
            records,
            target_prefix=prefix,
            cache_dir=cache / "pkgs",
            installed_packages=installed,
            show_progress=False,
            requested_specs=[spec._match_spec for spec in specs],
        )
        result["install_seconds"] = time.monotonic() - started
        result["installed"] = {
            r.name.normalized: str(r.version) for r in prefix_records(prefix)
        }
    return result


try:
    outcome = asyncio.run(main(json.loads(sys.argv[1])))
except Exception as exc:
    outcome = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(outcome), flush=True)
os._exit(0)  # skip interpreter shutdown: rattler's runtime may crash it
"""


def rattler(channel: str, cache: Path, prefix: Path, *specs: str, **options: bool) -> Any:
    request = {"channel": channel, "cache": str(cache), "prefix": str(prefix), "specs": specs}
    done = subprocess.run(
        [sys.executable, "-c", RATTLER, json.dumps({**request, **options})],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def run(*command: str | Path) -> str:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_channel_layout(conda_channel: Path):
    for subdir in ("linux-64", "noarch"):
        repodata = json.loads((conda_channel / subdir / "repodata.json").read_text())
        assert repodata["info"]["subdir"] == subdir
        assert not (conda_channel / subdir / "repodata_shards.msgpack.zst").exists()
    linux = json.loads((conda_channel / "linux-64" / "repodata.json").read_text())
    (python,) = [p for p in linux["packages.conda"].values() if p["name"] == "python"]
    assert (python["version"], python["subdir"], python["depends"]) == ("3.11.7", "linux-64", [])
    assert build_channel() == conda_channel  # built once, then reused


def test_install_update_conflict_and_extras(conda_channel_url: str, tmp_path: Path):
    cache, prefix = tmp_path / "cache", tmp_path / "env"
    first = rattler(
        conda_channel_url, cache, prefix, "python=3.11", "yardc-alpha==1.0", "yardc-tool"
    )
    assert first["installed"] == {"python": "3.11.7", "yardc-alpha": "1.0", "yardc-tool": "1.0"}
    python = prefix / "bin" / "python"
    code = (
        "import ssl, sqlite3, venv, json, sys, yardc_alpha; from importlib import metadata; "
        "print(yardc_alpha.__version__, metadata.distribution('yardc-alpha').read_text("
        "'INSTALLER').strip(), sys.prefix)"
    )
    assert run(python, "-c", code) == f"1.0 conda {prefix}"
    assert (prefix / "lib" / "python3.11" / "site-packages" / "yardc_alpha").is_dir()
    assert run(prefix / "bin" / "yardc-tool") == "yardc-tool 1.0"
    assert run(python, "-m", "pip", "--version").startswith("pip ")

    # A new version: the previous packages are locked and the prefix is updated in place.
    second = rattler(
        conda_channel_url, cache, prefix, "python=3.11", "yardc-alpha>=2", "yardc-tool", keep=True
    )
    assert second["installed"] == {"python": "3.11.7", "yardc-alpha": "2.0", "yardc-tool": "1.0"}
    assert run(python, "-c", code) == f"2.0 conda {prefix}"
    assert len(list((prefix / "conda-meta").glob("yardc-alpha-*.json"))) == 1

    conflict = rattler(conda_channel_url, cache, tmp_path / "x", "yardc-old", "yardc-alpha>=2")
    assert "SolverError" in conflict["error"]
    assert "yardc-old" in conflict["error"] and "yardc-alpha" in conflict["error"]

    # An optional dependency group (extra): rattler's spelling is [extras=[...]].
    extras = rattler(
        conda_channel_url, cache, prefix, "python=3.11", "yardc-alpha>=2[extras=[fast]]"
    )
    assert extras["installed"] == {"python": "3.11.7", "yardc-alpha": "2.0", "yardc-beta": "1.0"}
    assert run(python, "-c", "import yardc_beta; print(yardc_beta.__version__)") == "1.0"
