import pytest

from app.domain.errors import BadUserInput, InvalidState
from app.domain.requirements import PackageManager
from app.domain.statuses import VersionStatus
from app.domain.versions import (
    ChangeKind,
    Package,
    VersionRef,
    active_version,
    check_diffable,
    diff_packages,
    next_version_number,
    pip_replacing_conda,
    revert_target,
    uses_conda,
)

OK, FAIL, Q, B = (
    VersionStatus.SUCCEEDED,
    VersionStatus.FAILED,
    VersionStatus.QUEUED,
    VersionStatus.BUILDING,
)


@pytest.mark.parametrize(
    ("latest", "expected"),
    [
        (None, (1, False)),
        (VersionRef(1, OK), (2, False)),
        (VersionRef(3, FAIL), (3, True)),  # a failed build's number is reused
        (VersionRef(7, OK), (8, False)),
    ],
)
def test_next_version_number(latest, expected):
    assert next_version_number(latest) == expected


@pytest.mark.parametrize("status", [Q, B])
def test_no_new_version_while_building(status):
    with pytest.raises(InvalidState):
        next_version_number(VersionRef(2, status))


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([], None),
        ([VersionRef(1, FAIL)], None),
        ([VersionRef(1, OK), VersionRef(2, OK)], 2),
        ([VersionRef(1, OK), VersionRef(2, OK), VersionRef(3, FAIL)], 2),
        ([VersionRef(1, OK), VersionRef(2, B)], 1),
    ],
)
def test_active_version_is_latest_success(versions, expected):
    active = active_version(versions)
    assert (active.number if active else None) == expected


def test_revert_target_must_have_succeeded():
    versions = [VersionRef(1, OK), VersionRef(2, FAIL)]
    assert revert_target(versions, 1).number == 1
    with pytest.raises(BadUserInput):
        revert_target(versions, 2)
    with pytest.raises(BadUserInput):
        revert_target(versions, 9)


def pip(name, version):
    return Package(name, version, PackageManager.PIP)


def test_diff_kinds():
    before = [pip("a", "1.0"), pip("b", "2.0"), pip("c", "1.0"), pip("d", "1.0"), pip("e", "x1")]
    after = [pip("A", "1.0"), pip("b", "1.5"), pip("c", "1.1"), pip("f", "0.1"), pip("e", "x2")]
    changes = {c.name.lower(): (c.kind, c.before, c.after) for c in diff_packages(before, after)}
    assert changes == {
        "b": (ChangeKind.DOWNGRADED, "2.0", "1.5"),
        "c": (ChangeKind.UPGRADED, "1.0", "1.1"),
        "d": (ChangeKind.REMOVED, "1.0", None),
        "e": (ChangeKind.CHANGED, "x1", "x2"),
        "f": (ChangeKind.ADDED, None, "0.1"),
    }


def test_diff_keeps_managers_apart():
    before = [Package("numpy", "1.0", PackageManager.CONDA)]
    after = [pip("numpy", "1.0")]
    kinds = sorted((c.manager.value, c.kind.value) for c in diff_packages(before, after))
    assert kinds == [("CONDA", "REMOVED"), ("PIP", "ADDED")]


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        (VersionStatus.SUCCEEDED, True),
        (VersionStatus.QUEUED, False),
        (VersionStatus.BUILDING, False),
        (VersionStatus.FAILED, False),
    ],
)
def test_only_successful_versions_are_diffed(status, ok):
    if ok:
        check_diffable(3, status)
    else:
        with pytest.raises(InvalidState, match="Version 3"):
            check_diffable(3, status)


@pytest.mark.parametrize(
    ("requirements", "clashes"),
    [
        (["yardc-alpha==1.0"], []),
        (["yardc_alpha>=1"], []),
        (["yard-beta"], []),
        (["yardc-alpha"], []),
        (
            ["yardc-alpha==2.0", "yard-beta"],
            ["yardc-alpha==2.0 would replace yardc_alpha 1.0, which conda installed"],
        ),
        (
            ["YARDC.alpha>=2"],
            ["YARDC.alpha>=2 would replace yardc_alpha 1.0, which conda installed"],
        ),
    ],
)
def test_pip_never_replaces_a_conda_distribution(requirements, clashes):
    conda = [Package("yardc_alpha", "1.0", PackageManager.PIP)]
    assert pip_replacing_conda(requirements, conda) == clashes


@pytest.mark.parametrize(
    ("conda", "previous", "expected"),
    [
        ((), [], False),
        ((), [Package("yard-alpha", "1.0", PackageManager.PIP)], False),
        (("yardc-alpha",), [], True),
        ((), [Package("python", "3.11.7", PackageManager.CONDA)], True),  # stays conda
    ],
)
def test_which_versions_are_conda_environments(conda, previous, expected):
    assert uses_conda(conda, previous) is expected
