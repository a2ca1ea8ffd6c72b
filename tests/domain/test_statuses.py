import pytest

from app.domain.errors import InvalidState
from app.domain.statuses import (
    Action,
    EnvironmentStatus,
    VersionStatus,
    check_cancellable,
    transition,
)

S = EnvironmentStatus
ALLOWED = {
    (Action.EDIT, S.SAVED): S.SAVED,
    (Action.EDIT, S.DRAFT): S.DRAFT,
    (Action.EDIT, S.FAILED): S.FAILED,
    (Action.EDIT, S.PUBLISHED): S.PUBLISHED,
    (Action.BUILD, S.SAVED): S.IN_PROGRESS,
    (Action.BUILD, S.DRAFT): S.IN_PROGRESS,
    (Action.BUILD, S.FAILED): S.IN_PROGRESS,
    (Action.BUILD, S.PUBLISHED): S.IN_PROGRESS,
    (Action.REVERT, S.DRAFT): S.IN_PROGRESS,
    (Action.REVERT, S.FAILED): S.IN_PROGRESS,
    (Action.REVERT, S.PUBLISHED): S.IN_PROGRESS,
    (Action.BUILD_SUCCEEDED, S.IN_PROGRESS): S.DRAFT,
    (Action.BUILD_FAILED, S.IN_PROGRESS): S.FAILED,
    (Action.SUBMIT, S.DRAFT): S.PENDING_APPROVAL,
    (Action.SUBMIT, S.FAILED): S.PENDING_APPROVAL,
    (Action.APPROVE, S.PENDING_APPROVAL): S.PUBLISHED,
    (Action.REJECT, S.PENDING_APPROVAL): S.DRAFT,
    (Action.DEPRECATE, S.PUBLISHED): S.DEPRECATED,
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(EnvironmentStatus))
def test_every_action_in_every_status(action, status):
    expected = ALLOWED.get((action, status))
    if expected is None:
        with pytest.raises(InvalidState):
            transition(action, status)
    else:
        assert transition(action, status) is expected


def test_refusal_says_why():
    with pytest.raises(InvalidState, match=r"queued or running"):
        transition(Action.BUILD, S.IN_PROGRESS)
    with pytest.raises(InvalidState, match="never been built"):
        transition(Action.SUBMIT, S.SAVED)


@pytest.mark.parametrize(
    ("status", "cancellable"),
    [
        (VersionStatus.QUEUED, True),
        (VersionStatus.BUILDING, True),
        (VersionStatus.SUCCEEDED, False),
        (VersionStatus.FAILED, False),
    ],
)
def test_only_running_builds_can_be_cancelled(status, cancellable):
    if cancellable:
        check_cancellable(status)
    else:
        with pytest.raises(InvalidState):
            check_cancellable(status)
