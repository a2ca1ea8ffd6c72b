"""A per-user folder for what tests build once per host (wheelhouses, conda channels).

Not a predictable name in the shared temporary folder: another user could create it first
and hand the tests wheels or packages of their own. The folder is the current user's,
mode 0700, and is refused when it is not.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def private_root() -> Path:
    """`<tmp>/envyard-tests-<uid>`, made 0700 if missing; an error if another owns it."""
    root = Path(tempfile.gettempdir()) / f"envyard-tests-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    found = os.lstat(root)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid():
        raise RuntimeError(f"{root} is not a folder of this user's: refusing to use it")
    if found.st_mode & 0o077:
        raise RuntimeError(f"{root} is open to other users (mode {found.st_mode & 0o777:o})")
    return root
