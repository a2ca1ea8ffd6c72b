"""Object IDs as clients send them: canonical decimal strings, nothing that merely parses."""

from __future__ import annotations

import re

from app.domain.errors import NotFound

# ASCII digits only, no sign, no padding, no spaces: `int()` also accepts "07", " 7 ", "+7",
# "7_0" and non-ASCII digits (U+0667, U+FF17), so one object had many spellings.
_CANONICAL = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
MAX_ID = 2**31 - 1


def parse_id(value: str | int, what: str = "environment") -> int:
    """The object number an ID names; NOT_FOUND for anything but a canonical one."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _CANONICAL.fullmatch(text) or int(text) > MAX_ID:
        raise NotFound(f"No such {what}.")
    return int(text)
