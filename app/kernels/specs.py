"""Jupyter kernelspecs, with jupyter_client's conventions (JUPYTER_DATA_DIR, --prefix)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.kernels.api import KernelError

# Jupyter's kernel names, starting with a letter or digit: a name is also a directory name
# (never `.` or `..`).
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
METADATA_KEY = "envyard"
# argv[0] values jupyter_client replaces with its own interpreter (format_kernel_cmd).
_THIS_PYTHON = frozenset(
    {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
)


def _manager() -> Any:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        raise KernelError(
            "the kernel commands need jupyter_client: pip install 'envyard[kernel]'"
        ) from None
    return KernelSpecManager()


def kernel_name(text: str) -> str:
    """A kernel name as Jupyter accepts it (letters, digits, `.`, `_`, `-`; lower case)."""
    name = text.lower()
    if not _NAME.match(name):
        raise KernelError(
            f"{text!r} cannot be a kernel name: up to 64 letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class Kernel:
    name: str
    directory: Path
    spec: dict[str, Any]

    @property
    def display_name(self) -> str:
        return str(self.spec.get("display_name", self.name))

    @property
    def origin(self) -> dict[str, Any] | None:
        """Where envyard made it from (organization, short name, version...), if it did."""
        found = (self.spec.get("metadata") or {}).get(METADATA_KEY)
        return found if isinstance(found, dict) else None

    @property
    def language(self) -> str:
        return str(self.spec.get("language") or "")

    @property
    def interpreter(self) -> str:
        """The kernel's Python, as Jupyter starts it: argv[0], where `python`, `python3` and
        `python3.X` of this Python's version mean this Python (jupyter_client's rule), and
        another bare name is looked up on PATH (returned as is when it is not there)."""
        argv = self.spec.get("argv") or []
        if not argv:
            raise KernelError(f"kernel {self.name} has no command (argv) in its kernel.json")
        first = str(argv[0])
        if first in _THIS_PYTHON:
            return sys.executable
        if os.sep not in first:
            return shutil.which(first) or first
        return first

    def python_interpreter(self) -> str:
        """The interpreter of a Python kernel that exists here; KernelError otherwise."""
        if self.language.lower() != "python":
            raise KernelError(
                f"kernel {self.name} runs {self.language or 'no stated language'} (its "
                "kernel.json's language), not Python"
            )
        interpreter = self.interpreter
        if not Path(interpreter).is_file():
            raise KernelError(
                f"kernel {self.name}'s interpreter {interpreter} does not exist any more"
                if os.sep in interpreter
                else f"kernel {self.name}'s interpreter {interpreter} is not on PATH"
            )
        return interpreter


def kernels() -> list[Kernel]:
    """Every kernelspec Jupyter would find here, by name."""
    found = []
    for name, directory in sorted(_manager().find_kernel_specs().items()):
        kernel = _read(name, Path(directory))
        if kernel is not None:
            found.append(kernel)
    return found


def _read(name: str, directory: Path) -> Kernel | None:
    try:
        spec = json.loads((directory / "kernel.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return Kernel(name, directory, spec) if isinstance(spec, dict) else None


def installed(name: str, prefix: str | None) -> Kernel | None:
    """The kernel of that name where `install` would put it, if there is one."""
    return _read(name, target(name, prefix))


def find(name: str) -> Kernel:
    for kernel in kernels():
        if kernel.name == name.lower():
            return kernel
    raise KernelError(f"no kernel named {name!r} here (envyard kernel list shows them)")


def target(name: str, prefix: str | None) -> Path:
    """Where a kernelspec of that name is installed: under --prefix, or the user's Jupyter
    data directory (JUPYTER_DATA_DIR)."""
    if prefix:
        return Path(prefix) / "share" / "jupyter" / "kernels" / name
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "kernels" / name


def check_free(name: str, prefix: str | None, force: bool) -> None:
    """Refuse a name that a kernel has already, unless forced."""
    if force:
        return
    where = target(name, prefix)
    existing = where if where.exists() else None
    if existing is None:
        existing = next((k.directory for k in kernels() if k.name == name), None)
    if existing is not None:
        raise KernelError(
            f"a kernel named {name!r} exists already ({existing}): choose another --name, "
            "or pass --force to replace it"
        )


def install(
    name: str,
    argv: list[str],
    display_name: str,
    metadata: dict[str, Any],
    env: dict[str, str],
    prefix: str | None,
) -> Path:
    """Register a kernelspec; returns its directory."""
    spec = {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "env": env,
        "metadata": {METADATA_KEY: metadata},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="envyard-kernel-") as work:
            (Path(work) / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
            # jupyter_client always replaces a kernelspec of that name (its `replace` is
            # deprecated and ignored).
            installed = _manager().install_kernel_spec(
                work, name, user=prefix is None, prefix=prefix
            )
    except OSError as exc:
        raise KernelError(f"the kernelspec {name} cannot be installed: {exc}") from None
    return Path(installed)
