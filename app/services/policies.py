"""Organizations' package policies: what admins block, and which installed packages match."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from app.db.models import Environment, Policy, User, Version
from app.domain import access
from app.domain.governance import Rule, Violation, parse_rules, violations
from app.domain.versions import recorded_packages
from app.services.clock import now
from app.services.rows import with_packages
from app.services.visibility import actor

FIELD = "blockedPackages"


@dataclass(frozen=True, slots=True)
class PolicyView:
    blocked_packages: list[str]
    updated_at: datetime | None


async def get_policy(user: User) -> PolicyView:
    """The caller's organization's policy: every member may read it (it explains why an
    approval is held up)."""
    found = await Policy.get_or_none(organization_id=user.organization_id)
    if found is None:
        return PolicyView([], None)
    return PolicyView(list(found.blocked_packages), found.updated_at)


async def set_policy(user: User, blocked_packages: Sequence[str]) -> PolicyView:
    access.require_admin(actor(user), "set the organization's package policy")
    rules = parse_rules(FIELD, blocked_packages)
    texts = [rule.text for rule in rules]
    at = now()
    changes: dict[str, Any] = {
        "blocked_packages": texts,
        "updated_at": at,
        "updated_by_id": user.id,
    }
    if not await Policy.filter(organization_id=user.organization_id).update(**changes):
        try:
            await Policy.create(organization_id=user.organization_id, **changes)
        except IntegrityError:  # another admin's first policy won the race: this one follows
            await Policy.filter(organization_id=user.organization_id).update(**changes)
    return PolicyView(texts, at)


async def rules_of(organization_id: int) -> list[Rule]:
    found = await Policy.get_or_none(organization_id=organization_id)
    # Stored rules were validated when set; read back leniently so that a check added since
    # (the same rule written twice) never makes an old policy unreadable.
    return parse_rules(FIELD, found.blocked_packages, strict=False) if found is not None else []


async def violations_of(version: Version, organization_id: int) -> list[Violation]:
    return violations(recorded_packages(version.packages), await rules_of(organization_id))


async def violations_for(versions: Sequence[Version]) -> list[list[Violation]]:
    """Each version's violations against its organization's current policy, in one query
    whatever the number of versions (the GraphQL field's batch), and one more for the
    package lists of versions read without them."""
    await with_packages(versions)
    env_ids = {v.environment_id for v in versions}
    rows = await Environment.filter(id__in=env_ids).values_list(
        "id", "organization__policy__blocked_packages"
    )
    parsed: dict[tuple[str, ...], list[Rule]] = {}
    rules: dict[int, list[Rule]] = {}
    for env_id, blocked in rows:
        key = tuple(blocked or ())
        if key not in parsed:
            parsed[key] = parse_rules(FIELD, key, strict=False)
        rules[int(env_id)] = parsed[key]
    return [
        violations(recorded_packages(v.packages), rules.get(v.environment_id, [])) for v in versions
    ]
