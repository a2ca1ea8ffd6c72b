"""Who may see and do what. Organizations never cross."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.errors import Forbidden, InvalidState, NotFound
from app.domain.statuses import EnvironmentStatus


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    organization_id: int
    is_admin: bool


@dataclass(frozen=True, slots=True)
class EnvironmentFacts:
    organization_id: int
    creator_id: int
    status: EnvironmentStatus
    submitted: bool  # submitted for review at least once
    published: bool  # has a published version


def can_view(actor: Actor, env: EnvironmentFacts) -> bool:
    if actor.organization_id != env.organization_id:
        return False
    if actor.user_id == env.creator_id or env.published:
        return True
    return actor.is_admin and env.submitted


def require_view(actor: Actor, env: EnvironmentFacts) -> None:
    if not can_view(actor, env):
        raise NotFound("No such environment.")


def require_creator(actor: Actor, env: EnvironmentFacts, doing: str) -> None:
    """Editing, building, reverting and submitting belong to the creator."""
    require_view(actor, env)
    if actor.user_id != env.creator_id:
        raise Forbidden(f"Only the environment's creator can {doing} it.")


def require_reviewer(actor: Actor, env: EnvironmentFacts, doing: str) -> None:
    """Approve, reject and deprecate: admins of the environment's organization."""
    require_view(actor, env)
    if not actor.is_admin:
        raise Forbidden(f"Only an admin of the organization can {doing} an environment.")


def require_admin(actor: Actor, doing: str = "list environments waiting for approval") -> None:
    if not actor.is_admin:
        raise Forbidden(f"Only admins can {doing}.")


# Which version an activation uses.
ACTIVE = "active"  # the latest successful version (the creator's view)
PUBLISHED = "published"  # the approved version (everyone else in the organization)

_CREATOR_CAN_ACTIVATE = frozenset(
    {
        EnvironmentStatus.DRAFT,
        EnvironmentStatus.FAILED,
        EnvironmentStatus.PUBLISHED,
        EnvironmentStatus.PENDING_APPROVAL,
    }
)


def activation_source(actor: Actor, env: EnvironmentFacts, has_success: bool) -> str:
    """ACTIVE or PUBLISHED, or InvalidState saying why the environment cannot be activated."""
    require_view(actor, env)
    if env.status is EnvironmentStatus.DEPRECATED:
        raise InvalidState("This environment is deprecated and no longer offered for new use.")
    if actor.user_id != env.creator_id:
        if env.published:
            return PUBLISHED
        raise InvalidState("Only published environments can be activated by other users.")
    if env.status is EnvironmentStatus.SAVED:
        raise InvalidState("This environment has never been built; build it first.")
    if env.status is EnvironmentStatus.IN_PROGRESS:
        raise InvalidState("A build is queued or running; activate it when the build ends.")
    if env.status not in _CREATOR_CAN_ACTIVATE or not has_success:
        raise InvalidState("This environment has no successful build to activate.")
    return ACTIVE
