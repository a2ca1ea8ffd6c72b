"""Who sees which environments, as database filters and as facts for app.domain.access."""

from __future__ import annotations

from tortoise.expressions import Q

from app.db.models import Environment, User
from app.domain import access


def actor(user: User) -> access.Actor:
    return access.Actor(user.id, user.organization_id, user.is_admin)


def facts(env: Environment) -> access.EnvironmentFacts:
    return access.EnvironmentFacts(
        organization_id=env.organization_id,
        creator_id=env.creator_id,
        status=env.status,
        submitted=env.submitted_number is not None,
        published=env.published_number is not None,
    )


def visible_to(user: User) -> Q:
    """The environments `user` may see (access.can_view, as a filter)."""
    mine_or_shared = Q(creator_id=user.id) | Q(published_number__isnull=False)
    if user.is_admin:
        mine_or_shared |= Q(submitted_number__isnull=False)
    return Q(organization_id=user.organization_id) & mine_or_shared
