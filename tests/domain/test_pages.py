"""Pages of lists: `first` within 1..1000 or null (everything), numeric positions not
negative; refusals name the argument and the list."""

from __future__ import annotations

import pytest

from app.domain.errors import BadUserInput
from app.domain.pages import MAX_LIST_PAGE, check_after_number, check_first


@pytest.mark.parametrize("first", [None, 1, 50, MAX_LIST_PAGE])
def test_first_within_bounds_or_null(first):
    assert check_first(first, "environments") == first


@pytest.mark.parametrize("first", [0, -1, MAX_LIST_PAGE + 1])
def test_first_out_of_bounds(first):
    with pytest.raises(BadUserInput, match=r"^versions: first must be between 1 and 1000") as e:
        check_first(first, "versions")
    assert e.value.field == "first"


def test_after_number():
    assert check_after_number(None, "events") is None
    assert check_after_number(0, "events") == 0
    with pytest.raises(BadUserInput, match="events: after must not be negative") as e:
        check_after_number(-1, "events")
    assert e.value.field == "after"
