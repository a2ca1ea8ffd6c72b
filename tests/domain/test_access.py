import pytest

from app.domain import access
from app.domain.access import Actor, EnvironmentFacts
from app.domain.errors import Forbidden, InvalidState, NotFound
from app.domain.statuses import EnvironmentStatus as S

CREATOR = Actor(1, 10, False)
PEER = Actor(2, 10, False)
ADMIN = Actor(3, 10, True)
STRANGER_ADMIN = Actor(4, 20, True)


def env(status=S.DRAFT, submitted=False, published=False):
    return EnvironmentFacts(10, 1, status, submitted, published)


@pytest.mark.parametrize(
    ("who", "facts", "visible"),
    [
        (CREATOR, env(), True),
        (PEER, env(), False),
        (ADMIN, env(), False),
        (ADMIN, env(S.PENDING_APPROVAL, submitted=True), True),
        (PEER, env(S.PENDING_APPROVAL, submitted=True), False),
        (PEER, env(S.PUBLISHED, submitted=True, published=True), True),
        (STRANGER_ADMIN, env(S.PUBLISHED, submitted=True, published=True), False),
    ],
)
def test_visibility(who, facts, visible):
    assert access.can_view(who, facts) is visible


def test_review_needs_admin_of_same_org():
    pending = env(S.PENDING_APPROVAL, submitted=True)
    access.require_reviewer(ADMIN, pending, "approve")
    with pytest.raises(Forbidden):
        access.require_reviewer(CREATOR, pending, "approve")
    with pytest.raises(NotFound):
        access.require_reviewer(STRANGER_ADMIN, pending, "approve")


@pytest.mark.parametrize(
    ("who", "facts", "has_success", "result"),
    [
        (CREATOR, env(S.DRAFT), True, access.ACTIVE),
        (CREATOR, env(S.FAILED), True, access.ACTIVE),
        (CREATOR, env(S.PUBLISHED, True, True), True, access.ACTIVE),
        (CREATOR, env(S.PENDING_APPROVAL, True), True, access.ACTIVE),
        (PEER, env(S.PUBLISHED, True, True), True, access.PUBLISHED),
        (PEER, env(S.DRAFT, True, True), True, access.PUBLISHED),  # rebuilding after publish
        (CREATOR, env(S.SAVED), False, InvalidState),
        (CREATOR, env(S.IN_PROGRESS), True, InvalidState),
        (CREATOR, env(S.FAILED), False, InvalidState),
        (CREATOR, env(S.DEPRECATED, True, True), True, InvalidState),
        (PEER, env(S.DEPRECATED, True, True), True, InvalidState),
        (PEER, env(S.DRAFT), True, NotFound),
    ],
)
def test_activation(who, facts, has_success, result):
    if isinstance(result, type):
        with pytest.raises(result):
            access.activation_source(who, facts, has_success)
    else:
        assert access.activation_source(who, facts, has_success) == result
