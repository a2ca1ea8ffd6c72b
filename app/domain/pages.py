"""Pages of the lists a client may also ask for whole (environments, the review queue, an
environment's versions and events): `first` items after a position, or all when `first`
is null, as the contract always answered."""

from __future__ import annotations

from app.domain.errors import BadUserInput

MAX_LIST_PAGE = 1000


def check_first(first: int | None, what: str) -> int | None:
    if first is not None and not 1 <= first <= MAX_LIST_PAGE:
        raise BadUserInput(
            "first", f"{what}: first must be between 1 and {MAX_LIST_PAGE}, or null."
        )
    return first


def check_after_number(after: int | None, what: str) -> int | None:
    """A position that is a number (a version's, an event's id): never negative."""
    if after is not None and after < 0:
        raise BadUserInput("after", f"{what}: after must not be negative.")
    return after
