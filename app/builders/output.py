"""An installer's output as build log lines, and what its failure was about.

Lines are cut at MAX_LINE_CHARS (the rest is counted, not kept), so one enormous line can
neither fail a build nor fill memory; the cut line ends with a marker saying how much went.
When an install fails, `explain_failure` reads its output for the cause a person needs: the
requirement that could not be found or resolved, or the index that could not be reached.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Iterable, Sequence

from app.builders import Emit

MAX_LINE_CHARS = 16 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def count(number: int, noun: str, plural: str | None = None) -> str:
    """`1 package`, `2 packages`."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def cut_marker(dropped: int) -> str:
    return f" [... {dropped} more characters cut]"


class LineSplitter:
    """Text chunks in, complete lines out; at most MAX_LINE_CHARS of a line are held."""

    def __init__(self, max_chars: int = MAX_LINE_CHARS) -> None:
        self._max = max_chars
        self._parts: list[str] = []
        self._kept = 0
        self._dropped = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, chunk: str | bytes) -> list[str]:
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        *complete, rest = text.split("\n")
        lines = []
        for part in complete:
            self._hold(part)
            lines.append(self._take())
        self._hold(rest)
        return lines

    def close(self) -> list[str]:
        """The last line, when the output did not end with a newline."""
        self._hold(self._decoder.decode(b"", final=True))
        return [self._take()] if self._kept or self._dropped else []

    def _hold(self, text: str) -> None:
        room = max(0, self._max - self._kept)
        if text[:room]:
            self._parts.append(text[:room])
            self._kept += len(text[:room])
        self._dropped += max(0, len(text) - room)

    def _take(self) -> str:
        line = _ANSI.sub("", "".join(self._parts)).rstrip()
        if self._dropped:
            line += cut_marker(self._dropped)
        self._parts, self._kept, self._dropped = [], 0, 0
        return line


def tail() -> deque[str]:
    """The last lines of one step's output, kept for `explain_failure`."""
    return deque(maxlen=200)


async def relay(lines: Iterable[str], emit: Emit, last: deque[str]) -> None:
    """Emit the lines that say something, and remember them in `last`."""
    for line in lines:
        if line.strip():
            last.append(line)
            await emit(line)


_UV_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")
_UV_NO_VERSION = re.compile(r"Because there is no version of (\S+?)(?: and|,| we)")
_UV_FETCH = re.compile(r"Failed to fetch: (\S+)")
_UV_HASH = re.compile(r"Hash mismatch for `([^`]+)`")
_PIP_NO_MATCH = re.compile(
    r"Could not find a version that satisfies the requirement (.+?) \(from versions: (.*)\)"
)
_PIP_CONFLICT = re.compile(r"Cannot install (.+?) because these package versions have conflicting")
_UNREACHABLE = re.compile(
    r"Connection refused|Failed to establish a new connection|Name or service not known|"
    r"Temporary failure in name resolution|dns error|timed out|Network is unreachable|"
    r"No route to host|certificate verify failed|invalid peer certificate",
    re.IGNORECASE,
)


MAX_EXPLANATION = 500


def explain_failure(lines: Sequence[str], index: str) -> str | None:
    """Why an install (uv's or pip's) failed, in one sentence; None when it does not say.

    `index` names where the build looked, as a phrase: "the package index <URL>".
    """
    cause = _cause(lines, index)
    if cause is None or len(cause) <= MAX_EXPLANATION:
        return cause
    return cause[:MAX_EXPLANATION] + cut_marker(len(cause) - MAX_EXPLANATION)


def _short(name: str, limit: int = 120) -> str:
    """A requirement or URL quoted in an explanation, bounded."""
    return name if len(name) <= limit else name[:limit] + "..."


def _cause(lines: Sequence[str], index: str) -> str | None:
    text = "\n".join(lines)
    causes = [line.strip().removeprefix("cause:").strip() for line in lines]
    if _UNREACHABLE.search(text):
        line = next(c for c in reversed(causes) if _UNREACHABLE.search(c))
        # A long line (pip's) is reduced to its most specific match, which comes last.
        reason = line if len(line) <= 120 else _UNREACHABLE.findall(line)[-1]
        return f"{index} could not be reached ({reason})"
    if match := _UV_NOT_FOUND.search(text):
        return f"{_short(match[1])} was not found in {index}"
    if match := _UV_NO_VERSION.search(text):
        return f"no version matching {_short(match[1])} is in {index}"
    if match := _PIP_NO_MATCH.search(text):
        requirement, versions = _short(match[1]), _short(match[2].strip(), 300)
        if versions == "none":
            return f"{requirement} was not found in {index}"
        return f"no version matching {requirement} is in {index} (it has {versions})"
    if match := _PIP_CONFLICT.search(text):
        return f"the requirements conflict: {_short(match[1], 300)} cannot be installed together"
    if match := _UV_HASH.search(text):
        return (
            f"{index} serves a file for {_short(match[1])} whose sha256 is not the one "
            "recorded: the file was replaced after the version was built"
        )
    for line in lines:
        if line.startswith("error: No solution found"):
            after = causes[lines.index(line) + 1 :]
            return "the requirements cannot be resolved: " + (after[0] if after else line)
    if match := _UV_FETCH.search(text):
        return f"{_short(match[1])} could not be fetched ({_short(causes[-1], 300)})"
    for line in lines:
        if line.startswith(("error: ", "ERROR: ")):
            return line.split(": ", 1)[1]
    return None
