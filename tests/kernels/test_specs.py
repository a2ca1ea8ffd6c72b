"""Which interpreter a kernelspec runs, as Jupyter starts it (app/kernels/specs.py)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from app.kernels.api import KernelError
from app.kernels.specs import Kernel


def kernel(argv: list[str], language: str = "python") -> Kernel:
    return Kernel("k", Path("/nowhere"), {"argv": argv, "language": language})


def test_bare_names_are_this_python_or_found_on_path(tmp_path: Path) -> None:
    this = "python{}.{}".format(*sys.version_info[:2])
    for name in ("python", f"python{sys.version_info[0]}", this):
        assert kernel([name, "-m", "ipykernel_launcher"]).interpreter == sys.executable
    assert kernel(["sh"]).interpreter == shutil.which("sh")
    assert kernel(["python3.0"]).interpreter == (shutil.which("python3.0") or "python3.0")
    assert kernel([str(tmp_path / "bin" / "python")]).interpreter == str(
        tmp_path / "bin" / "python"
    )


def test_only_a_python_kernel_that_exists_is_inspected(tmp_path: Path) -> None:
    assert kernel(["python"]).python_interpreter() == sys.executable
    with pytest.raises(
        KernelError, match=r"kernel k runs R \(its kernel.json's language\), not Python"
    ):
        kernel([sys.executable], language="R").python_interpreter()
    with pytest.raises(KernelError, match="interpreter no-such-python3 is not on PATH"):
        kernel(["no-such-python3"]).python_interpreter()
    with pytest.raises(KernelError, match="does not exist any more"):
        kernel([str(tmp_path / "python")]).python_interpreter()
    with pytest.raises(KernelError, match="has no command"):
        kernel([]).python_interpreter()
