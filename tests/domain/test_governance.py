"""Policies, comparison with published environments, cursors and deprecation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.errors import BadUserInput
from app.domain.governance import (
    Similarity,
    compare,
    cursor,
    installed,
    most_similar_first,
    parse_rule,
    parse_rules,
    read_cursor,
    unused_since,
    violations,
)
from app.domain.requirements import PackageManager
from app.domain.versions import Package

PIP, CONDA = PackageManager.PIP, PackageManager.CONDA


@pytest.mark.parametrize(
    ("rule", "version", "matches"),
    [
        ("pyyaml<5.4", "5.3.1", True),
        ("pyyaml<5.4", "5.4", False),
        ("PyYAML < 5.4", "5.3", True),
        ("telnetlib3", "2.0.4", True),
        ("requests>=2.0,<2.31", "2.30.0", True),
        ("requests>=2.0,<2.31", "2.31.0", False),
        ("numpy=1.21", "1.21.6", True),  # conda's "the 1.21 series"
        ("numpy=1.21", "1.22.0", False),
        ("numpy==1.21.0", "1.21.0", True),
        ("numpy!=1.21.0", "1.21.0", False),
        ("openssl==1.1.1w", "1.1.1w", True),  # not PEP 440: named exactly
        ("openssl<3", "1.1.1w", False),  # not PEP 440: a range cannot order it
    ],
)
def test_rules_match_versions(rule, version, matches):
    name = parse_rule(rule).key
    assert parse_rule(rule).matches(Package(name, version, PIP)) is matches


def test_rules_match_both_managers_by_canonical_name():
    rules = parse_rules("blockedPackages", ["pyyaml<5.4", "telnetlib3"])
    installed = [
        Package("PyYAML", "5.3.1", PIP),
        Package("pyyaml", "5.3", CONDA),
        Package("telnetlib3", "2.0", PIP),
        Package("requests", "2.31.0", PIP),
    ]
    found = violations(installed, rules)
    assert [(v.name, v.manager, v.version, v.rule) for v in found] == [
        ("pyyaml", CONDA, "5.3", "pyyaml<5.4"),
        ("PyYAML", PIP, "5.3.1", "pyyaml<5.4"),
        ("telnetlib3", PIP, "2.0", "telnetlib3"),
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "pyyaml<",
        "pyyaml<<5",
        "-rfile.txt",
        "pkg; rm -rf /",
        "https://x/y.whl",
        "a" * 201,
    ],
)
def test_bad_rules_name_the_entry(raw):
    with pytest.raises(BadUserInput) as caught:
        parse_rules("blockedPackages", ["telnetlib3", raw])
    assert caught.value.field == "blockedPackages"
    assert caught.value.extensions["index"] == 1


@pytest.mark.parametrize(
    "pair",
    [
        ("telnetlib3", "telnetlib3"),
        ("yard-alpha", "Yard_Alpha"),
        ("pyyaml<5.4,>1", "PyYAML >1, <5.4"),
    ],
)
def test_the_same_rule_twice_is_refused(pair):
    with pytest.raises(BadUserInput, match="is the same rule as") as caught:
        parse_rules("blockedPackages", ["numpy", *pair])
    assert caught.value.extensions["index"] == 2


def test_stored_rules_written_twice_are_read_once():
    """A policy stored before the check existed stays readable: the repeat is dropped."""
    rules = parse_rules("blockedPackages", ["numpy", "Yard_Alpha", "yard-alpha"], strict=False)
    assert [r.text for r in rules] == ["numpy", "Yard_Alpha"]


def test_rules_of_one_package_with_other_versions_are_distinct():
    rules = parse_rules("blockedPackages", ["pyyaml<5.4", "pyyaml==6.0.0", "pyyaml"])
    assert [r.text for r in rules] == ["pyyaml<5.4", "pyyaml==6.0.0", "pyyaml"]


def _records(*packages: Package) -> list[dict[str, str]]:
    return [{"name": p.name, "version": p.version, "manager": p.manager.value} for p in packages]


def test_comparison_of_installed_sets():
    published = installed(
        _records(Package("a", "1", PIP), Package("B_x", "1", PIP), Package("c", "1", CONDA))
    )
    same = compare(published, dict(published))
    assert (same.similarity, same.same_versions) == (1.0, 3)
    other = compare(
        published, installed(_records(Package("a", "2", PIP), Package("b.x", "1", PIP)))
    )
    assert other.similarity == pytest.approx(2 / 3)  # names compared canonically
    assert other.same_versions == 1
    # The same name under the other manager is another package.
    alone = compare(
        installed(_records(Package("a", "1", PIP))), installed(_records(Package("a", "1", CONDA)))
    )
    assert alone.similarity == 0
    assert compare({}, {}).similarity == 1.0


def test_most_similar_first():
    found = [
        ("far", Similarity(0.1, 1)),
        ("dup", Similarity(1.0, 3)),
        ("nearb", Similarity(0.5, 2)),
        ("neara", Similarity(0.5, 2)),
        ("other", Similarity(0.5, 4)),
    ]
    assert [found[i][0] for i in most_similar_first(found)] == [
        "dup",
        "other",
        "neara",
        "nearb",
        "far",
    ]


def test_cursors_round_trip_and_refuse_forgeries():
    assert read_cursor(cursor("ml", 42)) == ("ml", 42)
    for forged in ["", "abc", cursor("ml", 1)[:-2] + "!!", "ZW52Om1sOng", "x" * 101]:
        with pytest.raises(BadUserInput) as caught:
            read_cursor(forged)
        assert caught.value.field == "after"


def test_unused_counts_from_the_latest_publication_or_activation():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    days = timedelta(days=1)
    assert unused_since(now - 91 * days, None, now, 90)
    assert not unused_since(now - 89 * days, None, now, 90)
    assert not unused_since(now - 200 * days, now - 10 * days, now, 90)
    # Published again recently: an old activation does not make it a candidate.
    assert not unused_since(now - 5 * days, now - 150 * days, now, 90)
