"""Only canonical ASCII decimal IDs name objects."""

import pytest

from app.domain.errors import NotFound
from app.domain.ids import parse_id


@pytest.mark.parametrize(
    ("value", "number"), [("7", 7), ("1", 1), ("2147483647", 2**31 - 1), (7, 7)]
)
def test_canonical_ids(value, number):
    assert parse_id(value) == number


@pytest.mark.parametrize(
    "value",
    [
        "07",
        " 7 ",
        "+7",
        "-7",
        "0",
        "7_0",
        "7.0",
        "1e3",
        "\u0667",  # ARABIC-INDIC DIGIT SEVEN
        "\uff17",  # FULLWIDTH DIGIT SEVEN
        "\u0967",  # DEVANAGARI DIGIT ONE
        "7\n",
        "",
        "2147483648",
        "99999999999",
        "abc",
        "\ud800",
        True,
        0,
        -1,
    ],
)
def test_other_spellings_name_nothing(value):
    with pytest.raises(NotFound) as caught:
        parse_id(value, "version")
    assert caught.value.message == "No such version."
