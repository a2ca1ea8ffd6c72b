import pytest

from app.domain import environments as rules
from app.domain.environments import BaseEnvironment
from app.domain.errors import BadUserInput

OFFERED = [BaseEnvironment("python:3.11", "3.11"), BaseEnvironment("python:3.12", "3.12")]


@pytest.mark.parametrize("name", ["a", "mlenv", "x1", "ab12c"])
def test_short_name_accepted(name):
    assert rules.check_short_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "toolong", "1abc", "ML", "ml-en", "ml_e", "ml e", "mlé", "a\n", " ml"]
)
def test_short_name_refused(name):
    with pytest.raises(BadUserInput) as caught:
        rules.check_short_name(name)
    assert caught.value.field == "shortName"


@pytest.mark.parametrize(
    ("base", "python", "expected"),
    [
        ("python:3.11", None, ("python:3.11", "3.11")),
        (None, "3.12", (None, "3.12")),
    ],
)
def test_base_or_python(base, python, expected):
    assert rules.resolve_python(base, python, OFFERED) == expected


@pytest.mark.parametrize(
    ("base", "python", "field"),
    [
        ("python:3.11", "3.11", "pythonVersion"),  # both
        (None, None, "pythonVersion"),  # neither
        ("python:2.7", None, "baseEnvironment"),  # unknown base
        (None, "3.7", "pythonVersion"),  # not on this host
        (None, "3.11; rm -rf /", "pythonVersion"),
    ],
)
def test_base_or_python_refused(base, python, field):
    with pytest.raises(BadUserInput) as caught:
        rules.resolve_python(base, python, OFFERED)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("value", "ok"),
    [("ML env", True), ("", False), ("   ", False), ("x" * 101, False), ("a\nb", False)],
)
def test_full_name(value, ok):
    if ok:
        assert rules.check_full_name(value) == value.strip()
    else:
        with pytest.raises(BadUserInput):
            rules.check_full_name(value)


def test_feedback_required():
    with pytest.raises(BadUserInput) as caught:
        rules.check_feedback("  ")
    assert caught.value.field == "feedback"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("acme", True),
        ("acme-labs", True),
        ("a.b_c", True),
        ("Acme", False),
        ("a-", False),
        ("a--b", False),
        ("1abc", False),
        ("a b", False),
        ("a" * 65, False),
    ],
)
def test_account_names_are_docker_safe(name, ok):
    if ok:
        assert rules.check_account_name("org", name) == name
    else:
        with pytest.raises(BadUserInput):
            rules.check_account_name("org", name)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("About\nthis\tenvironment", True),
        ("emoji 🍓 and accents é", True),
        ("lone \ud800 surrogate", False),
        ("low \udfff surrogate", False),
        ("NUL \0 inside", False),
        ("bell \x07", False),
        ("delete \x7f", False),
        ("x" * 2001, False),
    ],
)
def test_description_is_storable_text(value, ok):
    if ok:
        assert rules.check_description(value) == value.strip()
    else:
        with pytest.raises(BadUserInput) as caught:
            rules.check_description(value)
        assert caught.value.field == "description"


@pytest.mark.parametrize("value", ["\ud800", "fix \udc00 this", "", "  ", "x" * 5001, "a\0b"])
def test_feedback_refused(value):
    with pytest.raises(BadUserInput) as caught:
        rules.check_feedback(value)
    assert caught.value.field == "feedback"
