"""The time every service writes and compares: the system clock, or a test's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _source()


@contextmanager
def controlled(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, `now()` is `source()` (tests of time-dependent rules)."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous
