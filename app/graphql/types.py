"""GraphQL object types and inputs, exactly as the contract names them."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, NamedTuple, cast

import strawberry
from graphql import BREAK, FieldNode, GraphQLResolveInfo, Visitor, visit

from app.db import models
from app.domain import pages
from app.domain.environments import BaseEnvironment as BaseEnvironmentRule
from app.domain.errors import BadUserInput, NotFound
from app.domain.governance import Violation
from app.domain.ids import parse_id
from app.domain.lockfiles import LockFormat as LockFormatEnum
from app.domain.requirements import PackageManager as PackageManagerEnum
from app.domain.statuses import EnvironmentStatus as EnvironmentStatusEnum
from app.domain.statuses import EventKind as EventKindEnum
from app.domain.statuses import VersionStatus as VersionStatusEnum
from app.domain.versions import ChangeKind as ChangeKindEnum
from app.domain.versions import LibraryChange as LibraryChangeRule
from app.domain.versions import VersionRef, active_version
from app.graphql.context import Info
from app.services import environments as envs
from app.services import rows
from app.services.governance import Comparison

# A list's page: at most `first` items (1 to 1000; all when null) after `after`.
First = Annotated[int | None, strawberry.argument(description="1 to 1000; all when null.")]
AfterEnvironment = Annotated[
    strawberry.ID | None,
    strawberry.argument(
        description="The id of the last environment of the previous page (a page starts "
        "after it even if it changed since)."
    ),
]
AfterPending = Annotated[
    strawberry.ID | None,
    strawberry.argument(
        description="The id of the last environment of the previous page: a page starts after "
        "its place in the queue, its submission time (one that left the queue keeps it; one "
        "resubmitted since has a new one, and the page starts after that)."
    ),
]

EnvironmentStatus = strawberry.enum(EnvironmentStatusEnum, name="EnvironmentStatus")
VersionStatus = strawberry.enum(VersionStatusEnum, name="VersionStatus")
PackageManager = strawberry.enum(PackageManagerEnum, name="PackageManager")
ChangeKind = strawberry.enum(ChangeKindEnum, name="ChangeKind")
LockFormat = strawberry.enum(LockFormatEnum, name="LockFormat")
EventKind = strawberry.enum(EventKindEnum, name="EventKind")


@strawberry.type
class User:
    id: strawberry.ID
    username: str
    is_admin: bool
    organization_id: strawberry.Private[int]

    @classmethod
    def of(cls, user: models.User) -> User:
        return cls(
            id=strawberry.ID(str(user.id)),
            username=user.username,
            is_admin=user.is_admin,
            organization_id=user.organization_id,
        )

    @strawberry.field(description="The name of the user's organization.")
    async def organization(self) -> str:
        names = await models.Organization.filter(id=self.organization_id).values_list(
            "name", flat=True
        )
        return str(names[0]) if names else ""


@strawberry.type
class BaseEnvironment:
    name: str
    python_version: str

    @classmethod
    def of(cls, base: BaseEnvironmentRule) -> BaseEnvironment:
        return cls(name=base.name, python_version=base.python_version)


@strawberry.type
class InstalledPackage:
    name: str
    version: str
    manager: PackageManager  # type: ignore[valid-type]


class _Installed(NamedTuple):
    """An InstalledPackage as resolvers return it: the type's fields are plain attribute
    reads, and a listing makes tens of thousands of them (a tuple is cheaper to make than
    the strawberry type's instance; graphql-core reads attributes, whatever the class)."""

    name: str
    version: str
    manager: PackageManagerEnum


_MANAGERS = {m.value: m for m in PackageManagerEnum}


def _installed(records: list[dict[str, str]]) -> list[InstalledPackage]:
    managers = _MANAGERS
    made = [_Installed(p["name"], p["version"], managers[p["manager"]]) for p in records]
    return cast(list[InstalledPackage], made)


@strawberry.type
class Version:
    id: strawberry.ID
    number: int
    status: VersionStatus  # type: ignore[valid-type]
    conda_libraries: list[str]
    pip_libraries: list[str]
    created_at: datetime
    finished_at: datetime | None
    started_at: datetime | None = strawberry.field(
        description="When a builder picked this build up."
    )
    reverted_from: int | None = strawberry.field(
        description="The version number this version reverts to, when it is a revert."
    )
    archived: bool = strawberry.field(
        description="The retention policy removed this version's built files; a revert to "
        "it rebuilds it from its lock file."
    )
    size_bytes: float | None = strawberry.field(
        description="The bytes this version adds on its builder's disk (a local prefix) or "
        "in image layers (Docker); 0 for a revert reusing what was built; null when unknown."
    )
    model: strawberry.Private[models.Version]

    @strawberry.field(description="What the build installed, dependencies included.")
    def packages(self, info: Info) -> list[InstalledPackage]:
        # Made when asked for: listings and comparisons carry many versions of many packages.
        # Read with the version when the operation selects packages (see _versions); else
        # loaded here, batched, and awaited by graphql-core.
        records = rows.loaded_packages(self.model)
        if records is not None:
            return _installed(records)
        return cast(list[InstalledPackage], self._load_packages(info))

    async def _load_packages(self, info: Info) -> list[InstalledPackage]:
        return _installed(await info.context.packages_loader.load(self.model.id))

    @strawberry.field(description="The whole build log so far.")
    async def log(self, info: Info) -> str:
        return await info.context.log_loader.load(self.model)

    @strawberry.field(
        description="Every installed package (dependencies included, both managers) that "
        "matches a rule of the organization's current package policy."
    )
    async def policy_violations(self, info: Info) -> list[PolicyViolation]:
        found = await info.context.violations_loader.load(self.model)
        return [PolicyViolation.of(v) for v in found]

    @strawberry.field(description="The environment this version belongs to.")
    async def environment(self, info: Info) -> Environment:
        return Environment.of(await info.context.environment_loader.load(self.model.environment_id))

    @strawberry.field(
        description="What this version installed, as a file to recreate it: pip "
        "requirements, a conda environment file, or a rattler lock file (conda and pypi "
        "packages with URLs and hashes). Null unless the version built successfully."
    )
    async def lockfile(
        self,
        info: Info,
        format: LockFormat = LockFormatEnum.LOCK,  # type: ignore[valid-type]
    ) -> str | None:
        index_url = info.context.runtime.settings.index_url
        return await envs.version_lockfile(self.model, LockFormatEnum(format), index_url)

    @classmethod
    def of(cls, version: models.Version) -> Version:
        return cls(
            id=strawberry.ID(str(version.id)),
            number=version.number,
            status=version.status,
            conda_libraries=list(version.conda_libraries),
            pip_libraries=list(version.pip_libraries),
            created_at=version.created_at,
            finished_at=version.finished_at,
            started_at=version.started_at,
            reverted_from=version.reverted_from,
            archived=version.archived,
            size_bytes=None if version.size_bytes is None else float(version.size_bytes),
            model=version,
        )


@strawberry.type
class Environment:
    id: strawberry.ID
    short_name: str
    full_name: str
    description: str | None
    python_version: str
    conda_libraries: list[str]
    pip_libraries: list[str]
    status: EnvironmentStatus  # type: ignore[valid-type]
    review_feedback: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None = strawberry.field(
        description="When an admin last approved a version of it."
    )
    submitted_at: datetime | None = strawberry.field(
        description="When it was last submitted for review (the review queue's order)."
    )
    model: strawberry.Private[models.Environment]

    # Creator and versions are loaded when selected, batched over the response: a listing
    # that selects neither reads the environments' rows alone.

    @strawberry.field
    async def creator(self, info: Info) -> User:
        found = await info.context.user_loader.load(self.model.creator_id)
        assert found is not None  # users are never deleted
        return User.of(found)

    @strawberry.field(
        description="Its versions by number: all of them, or the first `first` after the "
        "version numbered `after`."
    )
    async def versions(
        self,
        info: Info,
        first: First = None,
        after: Annotated[
            int | None, strawberry.argument(description="A version number; from 1 when null.")
        ] = None,
    ) -> list[Version]:
        pages.check_first(first, "versions")
        pages.check_after_number(after, "versions")
        found = await _versions(info, self.model.id)
        if after is not None:
            found = [v for v in found if v.number > after]
        return [Version.of(v) for v in found[:first]]

    @strawberry.field
    async def latest_version(self, info: Info) -> Version | None:
        found = await _versions(info, self.model.id)
        return Version.of(found[-1]) if found else None

    @strawberry.field
    async def active_version(self, info: Info) -> Version | None:
        found = await _versions(info, self.model.id)
        active = active_version([VersionRef(v.number, v.status) for v in found])
        return _numbered(found, active.number if active else None)

    @strawberry.field
    async def published_version(self, info: Info) -> Version | None:
        if self.model.published_number is None:
            return None
        found = await _versions(info, self.model.id)
        return _numbered(found, self.model.published_number)

    @strawberry.field(description="The version last submitted for review.")
    async def submitted_version(self, info: Info) -> Version | None:
        if self.model.submitted_number is None:
            return None
        found = await _versions(info, self.model.id)
        return _numbered(found, self.model.submitted_number)

    @strawberry.field(description="Who activated it, how often, and when last.")
    async def usage(self, info: Info) -> EnvironmentUsage:
        found = await info.context.usage_loader.load(self.model.id)
        return EnvironmentUsage(
            activations=found.activations,
            users=found.users,
            last_activated_at=found.last_activated_at,
        )

    @strawberry.field(
        description="Every change of this environment, oldest first: all, or the first "
        "`first` after the event `after`."
    )
    async def events(
        self,
        info: Info,
        first: First = None,
        after: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="An event's id; from the first when null."),
        ] = None,
    ) -> list[EnvironmentEvent]:
        try:
            after_id = None if after is None else parse_id(after, "event")
        except NotFound:
            raise BadUserInput("after", "events: after must be an event's id.") from None
        pages.check_first(first, "events")
        pages.check_after_number(after_id, "events")
        found = await info.context.events_loader.load(self.model.id)
        if after_id is not None:
            found = [e for e in found if e.id > after_id]
        return [EnvironmentEvent.of(e) for e in found[:first]]

    @strawberry.field
    async def base_environment(self, info: Info) -> BaseEnvironment | None:
        name = self.model.base_environment
        if name is None:
            return None
        for base in await info.context.runtime.base_environments():
            if base.name == name:
                return BaseEnvironment.of(base)
        # Still named by the environment although this host no longer offers it.
        return BaseEnvironment(name=name, python_version=self.python_version)

    @classmethod
    def of(cls, env: models.Environment) -> Environment:
        """From an environment's row; what it links to is loaded when selected."""
        return cls(
            id=strawberry.ID(str(env.id)),
            short_name=env.short_name,
            full_name=env.full_name,
            description=env.description,
            python_version=env.python_version,
            conda_libraries=list(env.conda_libraries),
            pip_libraries=list(env.pip_libraries),
            status=env.status,
            review_feedback=env.review_feedback,
            created_at=env.created_at,
            updated_at=env.updated_at,
            published_at=env.published_at,
            submitted_at=env.submitted_at,
            model=env,
        )


# Fields whose resolvers read a version's package list.
_NEEDS_PACKAGES = frozenset({"packages", "policyViolations"})


def _versions(info: Info, env_id: int) -> Awaitable[list[models.Version]]:
    """An environment's versions, batched over the response, with their package lists when
    the operation selects packages anywhere (one query for both, rather than a second one
    for the lists)."""
    context = info.context
    operation = info._raw_info.operation
    seen = context.selects_packages.get(id(operation))
    if seen is None or seen[0] is not operation:
        seen = context.selects_packages[id(operation)] = (
            operation,
            _selects(info._raw_info, _NEEDS_PACKAGES),
        )
    wanted = seen[1]
    loader = context.full_versions_loader if wanted else context.versions_loader
    return loader.load(env_id)


def _selects(raw: GraphQLResolveInfo, names: frozenset[str]) -> bool:
    """Whether the operation or a fragment of its document selects a field of these names."""
    found = False

    class Finder(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> Any:
            nonlocal found
            if node.name.value in names:
                found = True
                return BREAK
            return None

    fragments = [getattr(f, "definition", f) for f in raw.fragments.values()]
    for node in (raw.operation, *fragments):
        visit(node, Finder())
        if found:
            return True
    return False


def _numbered(versions: list[models.Version], number: int | None) -> Version | None:
    for v in versions:
        if v.number == number:
            return Version.of(v)
    return None


@strawberry.type
class LibraryChange:
    name: str
    manager: PackageManager  # type: ignore[valid-type]
    kind: ChangeKind  # type: ignore[valid-type]
    before: str | None
    after: str | None

    @classmethod
    def of(cls, change: LibraryChangeRule) -> LibraryChange:
        return cls(
            name=change.name,
            manager=change.manager,
            kind=change.kind,
            before=change.before,
            after=change.after,
        )


@strawberry.type
class LibraryDiff:
    changes: list[LibraryChange]


@strawberry.type
class LogLine:
    number: int
    text: str


@strawberry.type
class Activation:
    environment: Environment
    version: Version
    python_path: str | None
    image: str | None


@strawberry.input
class EnvironmentInput:
    short_name: str
    full_name: str
    description: str | None = strawberry.UNSET
    base_environment: str | None = strawberry.UNSET
    python_version: str | None = strawberry.UNSET
    conda_libraries: list[str] = strawberry.field(default_factory=list)
    pip_libraries: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class EnvironmentUpdate:
    """Fields left out stay as they are; description: null clears it."""

    full_name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    conda_libraries: list[str] | None = strawberry.UNSET
    pip_libraries: list[str] | None = strawberry.UNSET


@strawberry.type
class EnvironmentUsage:
    activations: int
    users: int
    last_activated_at: datetime | None


@strawberry.type
class EnvironmentEvent:
    id: strawberry.ID
    at: datetime
    kind: EventKind  # type: ignore[valid-type]
    version_number: int | None
    note: str | None
    environment_id: strawberry.Private[int]
    actor_id: strawberry.Private[int | None]

    @strawberry.field
    async def environment(self, info: Info) -> Environment:
        return Environment.of(await info.context.environment_loader.load(self.environment_id))

    @strawberry.field(description="Null when the system did it (a worker, the retention policy).")
    async def actor(self, info: Info) -> User | None:
        if self.actor_id is None:
            return None
        found = await info.context.user_loader.load(self.actor_id)
        return None if found is None else User.of(found)

    @classmethod
    def of(cls, event: models.Event) -> EnvironmentEvent:
        return cls(
            id=strawberry.ID(str(event.id)),
            at=event.at,
            kind=event.kind,
            version_number=event.version_number,
            note=event.note,
            environment_id=event.environment_id,
            actor_id=event.actor_id,
        )


@strawberry.type
class PolicyViolation:
    name: str
    manager: PackageManager  # type: ignore[valid-type]
    version: str
    rule: str = strawberry.field(description="The policy entry it matches, as the admin wrote it.")

    @classmethod
    def of(cls, found: Violation) -> PolicyViolation:
        return cls(name=found.name, manager=found.manager, version=found.version, rule=found.rule)


@strawberry.type
class Policy:
    blocked_packages: list[str]
    updated_at: datetime | None


@strawberry.input
class PolicyInput:
    blocked_packages: list[str]


@strawberry.type
class PublishedComparison:
    version: Version
    similarity: float
    same_versions: int
    found: strawberry.Private[Comparison]

    @classmethod
    def of(cls, found: Comparison) -> PublishedComparison:
        return cls(
            version=Version.of(found.version),
            similarity=found.similarity.similarity,
            same_versions=found.similarity.same_versions,
            found=found,
        )

    @strawberry.field(description="A published environment of the organization.")
    async def environment(self, info: Info) -> Environment:
        return Environment.of(await info.context.environment_loader.load(self.found.environment_id))

    @strawberry.field(description="From that published version to the compared one.")
    def changes(self) -> list[LibraryChange]:
        return [LibraryChange.of(c) for c in self.found.changes()]


@strawberry.input
class EnvironmentFilter:
    status: list[EnvironmentStatus] | None = None  # type: ignore[valid-type]
    search: str | None = None
    creator: str | None = None
    contains_package: str | None = None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class EnvironmentEdge:
    cursor: str
    node: Environment


@strawberry.type
class EnvironmentConnection:
    total_count: int
    edges: list[EnvironmentEdge]
    page_info: PageInfo
