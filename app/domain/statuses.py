"""Statuses of environments and versions, and the only transitions allowed between them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.domain.errors import InvalidState


class EnvironmentStatus(StrEnum):
    SAVED = "SAVED"
    IN_PROGRESS = "IN_PROGRESS"
    DRAFT = "DRAFT"
    FAILED = "FAILED"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    PUBLISHED = "PUBLISHED"
    DEPRECATED = "DEPRECATED"


class VersionStatus(StrEnum):
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (VersionStatus.SUCCEEDED, VersionStatus.FAILED)


class EventKind(StrEnum):
    """What changed in an environment (the contract's EventKind)."""

    CREATED = "CREATED"
    UPDATED = "UPDATED"
    BUILD_QUEUED = "BUILD_QUEUED"
    BUILD_SUCCEEDED = "BUILD_SUCCEEDED"
    BUILD_FAILED = "BUILD_FAILED"
    BUILD_CANCELLED = "BUILD_CANCELLED"
    REVERTED = "REVERTED"
    SUBMITTED = "SUBMITTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DEPRECATED = "DEPRECATED"
    ACTIVATED = "ACTIVATED"
    ARCHIVED = "ARCHIVED"  # a version's built files were removed by the retention policy
    RESTORED = "RESTORED"  # an archived version was rebuilt from its lock file


# A version in one of these has a build that may still end: it can be cancelled or failed
# from outside (a dead worker, a restart).
RUNNING_VERSION = (VersionStatus.QUEUED, VersionStatus.BUILDING)


def check_cancellable(status: VersionStatus) -> None:
    if status not in RUNNING_VERSION:
        raise InvalidState("This build has already ended.")


class Action(StrEnum):
    EDIT = "edit"
    BUILD = "build"
    REVERT = "revert"
    BUILD_SUCCEEDED = "build succeeded"
    BUILD_FAILED = "build failed"
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    DEPRECATE = "deprecate"


S = EnvironmentStatus


@dataclass(frozen=True, slots=True)
class Transition:
    allowed_from: frozenset[EnvironmentStatus]
    to: EnvironmentStatus | None  # None: the status stays as it is

    def target(self, current: EnvironmentStatus) -> EnvironmentStatus:
        return current if self.to is None else self.to


# The whole status machine of the seed documents. A published environment may be edited and
# rebuilt by its creator: its published version stays what the organization uses until an
# admin approves a newer one.
TRANSITIONS: dict[Action, Transition] = {
    Action.EDIT: Transition(frozenset({S.SAVED, S.DRAFT, S.FAILED, S.PUBLISHED}), None),
    Action.BUILD: Transition(frozenset({S.SAVED, S.DRAFT, S.FAILED, S.PUBLISHED}), S.IN_PROGRESS),
    Action.REVERT: Transition(frozenset({S.DRAFT, S.FAILED, S.PUBLISHED}), S.IN_PROGRESS),
    Action.BUILD_SUCCEEDED: Transition(frozenset({S.IN_PROGRESS}), S.DRAFT),
    Action.BUILD_FAILED: Transition(frozenset({S.IN_PROGRESS}), S.FAILED),
    Action.SUBMIT: Transition(frozenset({S.DRAFT, S.FAILED}), S.PENDING_APPROVAL),
    Action.APPROVE: Transition(frozenset({S.PENDING_APPROVAL}), S.PUBLISHED),
    Action.REJECT: Transition(frozenset({S.PENDING_APPROVAL}), S.DRAFT),
    Action.DEPRECATE: Transition(frozenset({S.PUBLISHED}), S.DEPRECATED),
}

_WHY_NOT: dict[EnvironmentStatus, str] = {
    S.SAVED: "it has never been built",
    S.IN_PROGRESS: "a build is queued or running; wait for it to finish",
    S.DRAFT: "it is a draft",
    S.FAILED: "its latest build failed",
    S.PENDING_APPROVAL: "it is waiting for an admin's review",
    S.PUBLISHED: "it is published",
    S.DEPRECATED: "it is deprecated",
}


def transition(action: Action, current: EnvironmentStatus) -> EnvironmentStatus:
    """The status after `action`, or InvalidState naming why the action is refused now."""
    rule = TRANSITIONS[action]
    if current not in rule.allowed_from:
        raise InvalidState(f"Cannot {action.value} this environment: {_WHY_NOT[current]}.")
    return rule.target(current)
