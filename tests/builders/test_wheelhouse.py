"""ipykernel and all it needs, repacked from this environment (tests/support/wheelhouse.py),
so that the tests' index can make kernels without the public index."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from uv import find_uv_bin

from tests.support.wheelhouse import wheel_name


def test_a_new_environment_installs_ipykernel_from_the_local_index_alone(
    tmp_path: Path, index_url: str
):
    # No uv settings from the caller (extra indexes, a shared cache): an empty cache proves
    # that the index serves the whole closure.
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
    env |= {"UV_CACHE_DIR": str(tmp_path / "cache"), "UV_NO_CONFIG": "1"}

    def run(*args: str) -> str:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    uv, venv = find_uv_bin(), tmp_path / "venv"
    python = str(venv / "bin" / "python")
    run(uv, "venv", "--python", sys.executable, str(venv))
    run(uv, "pip", "install", "--python", python, "--index-url", index_url, "ipykernel")

    imported = run(python, "-c", "import ipykernel, zmq, tornado; print(ipykernel.__version__)")
    assert imported.strip() == metadata.version("ipykernel")
    # Data files are back in place, and console scripts are made again from entry points.
    kernel_json = "share/jupyter/kernels/python3/kernel.json"
    if any(f.match(kernel_json) for f in metadata.files("ipykernel") or []):
        assert json.loads((venv / kernel_json).read_text())["language"] == "python"
    assert (venv / "bin" / "jupyter-kernelspec").is_file()


def test_a_wheel_is_named_by_the_compressed_tags_of_its_wheel_file(tmp_path: Path):
    info = tmp_path / "Py.Zmq-27.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: Py.Zmq\nVersion: 27.3.0\n")
    (info / "WHEEL").write_text(
        "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n"
        "Tag: cp311-cp311-manylinux_2_26_x86_64\nTag: cp311-cp311-manylinux_2_28_x86_64\n"
    )
    assert (
        wheel_name(metadata.PathDistribution(info))
        == "py_zmq-27.3.0-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl"
    )
