"""Which versions the retention policy archives."""

from __future__ import annotations

import pytest

from app.domain.errors import BadUserInput
from app.domain.retention import Held, to_archive
from app.domain.statuses import VersionStatus

OK, FAILED = VersionStatus.SUCCEEDED, VersionStatus.FAILED


def held(number: int, status: VersionStatus = OK, **kw: object) -> Held:
    values: dict[str, object] = {"archived": False, "location": f"/envs/v{number}"}
    values.update(kw)
    return Held(number, status, **values)  # type: ignore[arg-type]


def numbers(found: list[Held]) -> list[int]:
    return [v.number for v in found]


def test_keeps_the_latest_successes_and_archives_the_rest_oldest_first():
    versions = [held(n) for n in range(1, 6)]
    assert numbers(to_archive(versions, keep=2)) == [1, 2, 3]
    assert numbers(to_archive(versions, keep=5)) == []


def test_failed_and_running_versions_are_not_counted_or_archived():
    versions = [held(1), held(2), held(3, FAILED, location=None)]
    assert numbers(to_archive(versions, keep=1)) == [1]
    queued = [held(1), held(2), held(3, VersionStatus.QUEUED, location=None)]
    assert numbers(to_archive(queued, keep=1)) == [1]


def test_submitted_and_published_versions_keep_their_files():
    versions = [held(n) for n in range(1, 6)]
    assert numbers(to_archive(versions, keep=1, pinned=(2, None))) == [1, 3, 4]
    assert numbers(to_archive(versions, keep=1, pinned=(3, 1))) == [2, 4]


def test_a_pending_revert_keeps_its_target():
    versions = [held(1), held(2), held(3), held(4, VersionStatus.BUILDING, reverted_from=1)]
    assert numbers(to_archive(versions, keep=1)) == [2]
    done = [held(1), held(2), held(3), held(4, reverted_from=1, location="/envs/v1")]
    # A finished revert that shares its target's files keeps them (it is the active one).
    assert numbers(to_archive(done, keep=1)) == [2, 3]


def test_archived_versions_are_not_archived_again():
    versions = [held(1, archived=True), held(2), held(3)]
    assert numbers(to_archive(versions, keep=1)) == [2]


def test_keep_must_be_positive():
    with pytest.raises(BadUserInput, match="at least 1"):
        to_archive([held(1)], keep=0)
