"""An admin's review tools: comparison with published environments, package search,
deprecation candidates, and environment search with cursor pagination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.expressions import F, Q, Subquery

from app.db.models import Environment, Installed, User, Version
from app.domain import access
from app.domain import governance as rules
from app.domain.errors import BadUserInput, Forbidden
from app.domain.statuses import EnvironmentStatus, VersionStatus
from app.domain.versions import LibraryChange, check_diffable, diff_packages, recorded_packages
from app.services import events
from app.services.clock import now
from app.services.environments import get_version
from app.services.rows import version_columns
from app.services.visibility import actor, visible_to

# -- comparison with published environments ------------------------------------------------


MAX_COMPARED = 1000


@dataclass(frozen=True, slots=True)
class Comparison:
    environment_id: int
    version: Version  # the published version
    compared: Version
    similarity: rules.Similarity

    def changes(self) -> list[LibraryChange]:
        """From the published version to the compared one."""
        return diff_packages(
            recorded_packages(self.version.packages), recorded_packages(self.compared.packages)
        )


async def compare_with_published(
    user: User, version_id: str, first: int | None = None
) -> list[Comparison]:
    """The published environments of the version's organization other than its own (all,
    or the `first` most similar), most similar first (an exact duplicate first of all: same
    names, then most packages at the same version). Without `first` the answer grows with
    the number of published environments, as the review asks ("every published
    environment"); a dashboard passes `first`. Four queries whatever the number: the
    version and its environment, the ranking, the versions kept. Environments and change
    lists are left to the caller, who may not need them."""
    if first is not None and not 1 <= first <= MAX_COMPARED:
        raise BadUserInput("first", f"first must be between 1 and {MAX_COMPARED}.")
    version = await get_version(user, version_id)
    env = version.environment
    if not (user.is_admin or user.id == env.creator_id):
        raise Forbidden(
            "Only the environment's creator and admins can compare it with published environments."
        )
    check_diffable(version.number, version.status)
    rows = (
        await Version.filter(
            environment__organization_id=env.organization_id,
            environment__status=EnvironmentStatus.PUBLISHED,
            number=F("environment__published_number"),
        )
        .exclude(environment_id=env.id)
        .values_list("id", "environment_id", "environment__short_name", "packages")
    )
    mine = rules.installed(version.packages)
    ranked = [
        (str(short), rules.compare(rules.installed(packages), mine)) for *_, short, packages in rows
    ]
    order = rules.most_similar_first(ranked)[:first]
    kept = {
        v.id: v
        for v in await Version.filter(id__in=[rows[i][0] for i in order]).only(*version_columns())
    }
    return [
        Comparison(int(rows[i][1]), kept[rows[i][0]], version, ranked[i][1])
        for i in order
        if rows[i][0] in kept  # not gone since the ranking
    ]


# -- package search ------------------------------------------------------------------------


async def versions_with_package(user: User, name: str, spec: str | None) -> list[Version]:
    """Every successful version the user may see that has the package installed (within
    `spec` when given), by environment then number."""
    key = rules.check_package_name("name", name)
    specifier = rules.check_specifier("spec", spec)
    rows = await Installed.filter(
        name=key,
        environment_id__in=Subquery(Environment.filter(visible_to(user)).values("id")),
    ).values_list("version_id", "version_text")
    ids = {int(v) for v, text in rows if rules.in_specifier(str(text), specifier)}
    if not ids:
        return []
    return (
        await Version.filter(id__in=ids, status=VersionStatus.SUCCEEDED)
        .only(*version_columns())
        .order_by("environment_id", "number")
    )


# -- deprecation ---------------------------------------------------------------------------


async def deprecation_candidates(user: User, unused_for_days: int) -> list[Environment]:
    """Published environments of the admin's organization that nobody activated for
    `unused_for_days` (counted from their publication when never activated since), least
    recently used first."""
    access.require_admin(actor(user), "list deprecation candidates")
    days = rules.check_days(unused_for_days)
    envs = await Environment.filter(
        organization_id=user.organization_id, status=EnvironmentStatus.PUBLISHED
    )
    usage = await events.usage([e.id for e in envs])
    at = now()
    chosen = [
        (env, used.last_activated_at)
        for env, used in zip(envs, usage, strict=True)
        if rules.unused_since(env.published_at or env.updated_at, used.last_activated_at, at, days)
    ]
    chosen.sort(key=lambda pair: pair[1] or pair[0].published_at or pair[0].updated_at)
    return [env for env, _ in chosen]


# -- search --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchFilter:
    status: Sequence[EnvironmentStatus] | None = None
    search: str | None = None
    creator: str | None = None
    contains_package: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    total_count: int
    environments: list[Environment]
    has_next_page: bool

    @staticmethod
    def cursor(env: Environment) -> str:
        return rules.cursor(env.short_name, env.id)


async def search_environments(
    user: User, where: SearchFilter, first: int, after: str | None
) -> Page:
    """A page of the environments the user may see, by short name (unique in an
    organization): two queries whatever the page size (count, page); the GraphQL fields load
    creators and versions when selected."""
    first = rules.check_first(first)
    query = Environment.filter(visible_to(user))
    if where.status:
        query = query.filter(status__in=list(where.status))
    text = rules.check_search_text("search", where.search)
    if text is not None:
        query = query.filter(
            Q(short_name__icontains=text)
            | Q(full_name__icontains=text)
            | Q(description__icontains=text)
        )
    creator = rules.check_search_text("creator", where.creator)
    if creator is not None:
        query = query.filter(creator__username=creator)
    if where.contains_package is not None:
        key = rules.check_package_name("containsPackage", where.contains_package)
        query = query.filter(
            id__in=Subquery(Installed.filter(name=key, active=True).values("environment_id"))
        )
    total = await query.count()
    if after is not None:
        short_name, env_id = rules.read_cursor(after)
        query = query.filter(Q(short_name__gt=short_name) | Q(short_name=short_name, id__gt=env_id))
    rows = await query.order_by("short_name", "id").limit(first + 1)
    return Page(total, rows[:first], len(rows) > first)
