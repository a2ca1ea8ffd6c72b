"""Environment use cases: create, edit, build, revert, submit, review, activate, browse."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.query_utils import Prefetch
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.builders.lock import write_lock
from app.db.models import Environment, User, Version
from app.domain import access, governance, pages
from app.domain import environments as rules
from app.domain.errors import BadUserInput, InvalidState, NameTaken, NotFound
from app.domain.ids import parse_id
from app.domain.lockfiles import LockFormat, environment_yml, has_lockfile, requirements_txt
from app.domain.requirements import PackageManager
from app.domain.statuses import Action, EnvironmentStatus, EventKind, VersionStatus, transition
from app.domain.versions import (
    LibraryChange,
    Package,
    VersionRef,
    active_version,
    check_diffable,
    diff_packages,
    next_version_number,
    recorded_packages,
    revert_target,
)
from app.services import events, policies
from app.services.clock import now
from app.services.rows import version_columns
from app.services.runtime import Runtime
from app.services.visibility import actor, facts, visible_to


def ref(version: Version) -> VersionRef:
    return VersionRef(version.number, version.status)


def packages_of(version: Version) -> list[Package]:
    return recorded_packages(version.packages)


# -- loading with visibility ---------------------------------------------------------------


async def _load(user: User, env_id: str | int, *related: str | Prefetch) -> Environment:
    env = await Environment.get_or_none(id=parse_id(env_id)).prefetch_related(*related)
    if env is None:
        raise NotFound("No such environment.")
    access.require_view(actor(user), facts(env))
    return env


def _versions() -> Prefetch:
    return Prefetch("versions", queryset=Version.all().only(*version_columns()))


async def get_environment(user: User, env_id: str | int) -> Environment:
    return await _load(user, env_id, "creator", _versions())


async def _anchor(user: User, after: str | None) -> Environment | None:
    """The environment a page continues after: one the caller may see."""
    if after is None:
        return None
    try:
        env = await Environment.get_or_none(id=parse_id(after))
    except NotFound:
        env = None
    if env is None or not access.can_view(actor(user), facts(env)):
        raise BadUserInput("after", "after must be the id of an environment of the previous page.")
    return env


async def environments_query(
    user: User, first: int | None = None, after: str | None = None
) -> QuerySet[Environment]:
    """The environments the user may see, by short name (unique in an organization, and
    never changed), all of them or `first` after the environment `after`, as one query (the
    GraphQL listing reads it as rows or as models; see app/graphql/listing.py)."""
    first = pages.check_first(first, "environments")
    query = Environment.filter(visible_to(user))
    anchor = await _anchor(user, after)
    if anchor is not None:
        query = query.filter(
            Q(short_name__gt=anchor.short_name) | Q(short_name=anchor.short_name, id__gt=anchor.id)
        )
    query = query.order_by("short_name", "id")
    return query.limit(first) if first is not None else query


async def pending_query(
    user: User, first: int | None = None, after: str | None = None
) -> QuerySet[Environment]:
    """The review queue, oldest submission first, all of it or `first` after the
    environment `after` (which may have left the queue since: its submission time stays; if
    it was resubmitted since, the page starts after its new submission: the contract's `after`
    is an id, which cannot carry the place it had when the previous page was read)."""
    access.require_admin(actor(user))
    first = pages.check_first(first, "pendingEnvironments")
    query = Environment.filter(
        organization_id=user.organization_id, status=EnvironmentStatus.PENDING_APPROVAL
    )
    anchor = await _anchor(user, after)
    if anchor is not None:
        if anchor.submitted_at is None:
            raise BadUserInput("after", "after must be the id of a submitted environment.")
        query = query.filter(
            Q(submitted_at__gt=anchor.submitted_at)
            | Q(submitted_at=anchor.submitted_at, id__gt=anchor.id)
        )
    query = query.order_by("submitted_at", "id")
    return query.limit(first) if first is not None else query


async def get_version(user: User, version_id: str | int) -> Version:
    version = await Version.get_or_none(id=parse_id(version_id, "version")).prefetch_related(
        "environment"
    )
    if version is None or not access.can_view(actor(user), facts(version.environment)):
        raise NotFound("No such version.")
    return version


_LOCK_WRITERS = asyncio.Semaphore(2)


async def version_lockfile(version: Version, fmt: LockFormat, index_url: str | None) -> str | None:
    """A successful version's lock file in `fmt`; None for any other version. `index_url`
    is the pip index of versions built before lock files, which recorded no URLs."""
    if not has_lockfile(version.status):
        return None
    packages = packages_of(version)
    if fmt is LockFormat.REQUIREMENTS_TXT:
        return requirements_txt(packages)
    if fmt is LockFormat.ENVIRONMENT_YML:
        env = await Environment.get(id=version.environment_id)
        channels = version.channels or []
        return environment_yml(env.short_name, channels, packages, env.python_version)
    stored = await Version.filter(id=version.id).values_list("lockfile", flat=True)
    if stored and stored[0]:
        return str(stored[0])
    # Built without a lock file (before lock files, or its writing failed at build time):
    # written once from the recorded pip packages, without file URLs or conda records, then
    # kept. At most two are written at once,
    # however many a request asks for.
    async with _LOCK_WRITERS:
        stored = await Version.filter(id=version.id).values_list("lockfile", flat=True)
        if stored and stored[0]:
            return str(stored[0])
        pip = [(p.name, p.version, "") for p in packages if p.manager is PackageManager.PIP]
        text = await write_lock(version.channels or [], pip, index_url)
        await Version.filter(Q(lockfile__isnull=True) | Q(lockfile=""), id=version.id).update(
            lockfile=text
        )
        return text


async def lockfile_for_operator(
    env_id: str, number: int | None, fmt: LockFormat, index_url: str | None
) -> str:
    """`envyard lock` on the server host: any environment, its active version by default."""
    env = await Environment.get_or_none(id=parse_id(env_id))
    if env is None:
        raise NotFound(f"No environment {env_id}.")
    versions = await Version.filter(environment_id=env.id)
    if number is None:
        active = active_version([ref(v) for v in versions])
        if active is None:
            raise InvalidState(f"Environment {env.short_name} has no successful build.")
        number = active.number
    version = next((v for v in versions if v.number == number), None)
    if version is None:
        raise NotFound(f"Environment {env.short_name} has no version {number}.")
    text = await version_lockfile(version, fmt, index_url)
    if text is None:
        raise InvalidState(f"Version {number} of {env.short_name} did not build successfully.")
    return text


async def library_diff(
    user: User, from_version: str | int, to_version: str | int
) -> list[LibraryChange]:
    before = await get_version(user, from_version)
    after = await get_version(user, to_version)
    check_diffable(before.number, before.status)
    check_diffable(after.number, after.status)
    return diff_packages(packages_of(before), packages_of(after))


# -- guarded writes ------------------------------------------------------------------------


async def _transition(env: Environment, action: Action, **changes: Any) -> None:
    """Move `env` by `action`: only from the status it was read in, checked by the database.

    A concurrent writer that got there first leaves zero rows updated, and this call
    refuses with INVALID_STATE instead of overwriting what the other one did.
    """
    target = transition(action, env.status)
    updated = await Environment.filter(id=env.id, status=env.status).update(
        status=target, updated_at=now(), **changes
    )
    if updated != 1:
        fresh = await Environment.get(id=env.id)
        transition(action, fresh.status)  # raises with the current reason
        raise InvalidState("This environment changed while the request ran; try again.")
    env.status = target
    for name, value in changes.items():
        setattr(env, name, value)


# -- use cases -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvironmentData:
    short_name: str
    full_name: str
    description: str | None
    base_environment: str | None
    python_version: str | None
    conda_libraries: Sequence[str]
    pip_libraries: Sequence[str]


async def create_environment(rt: Runtime, user: User, data: EnvironmentData) -> Environment:
    definition = rules.check_definition(
        short_name=data.short_name,
        full_name=data.full_name,
        description=data.description,
        base_environment=data.base_environment,
        python_version=data.python_version,
        conda_libraries=data.conda_libraries,
        pip_libraries=data.pip_libraries,
        offered=await rt.base_environments(),
    )
    try:
        async with in_transaction():
            env = await Environment.create(
                organization_id=user.organization_id,
                creator=user,
                short_name=definition.short_name,
                full_name=definition.full_name,
                description=definition.description,
                base_environment=definition.base_environment,
                python_version=definition.python_version,
                conda_libraries=[lib.entry for lib in definition.conda_libraries],
                pip_libraries=[lib.entry for lib in definition.pip_libraries],
                status=EnvironmentStatus.SAVED,
            )
            event = await events.record(env.id, EventKind.CREATED, actor_id=user.id)
    except IntegrityError:  # the unique (organization, short name) constraint decides races
        raise NameTaken(definition.short_name) from None
    await events.publish(rt.events, [event], env)
    return await get_environment(user, env.id)


@dataclass(frozen=True, slots=True)
class EnvironmentChanges:
    full_name: str | None = None
    description: str | None = None
    conda_libraries: Sequence[str] | None = None
    pip_libraries: Sequence[str] | None = None
    clear_description: bool = False


async def update_environment(
    rt: Runtime, user: User, env_id: str, data: EnvironmentChanges
) -> Environment:
    env = await _load(user, env_id)
    access.require_creator(actor(user), facts(env), "edit")
    changes: dict[str, Any] = {}
    if data.full_name is not None:
        changes["full_name"] = rules.check_full_name(data.full_name)
    if data.description is not None or data.clear_description:
        changes["description"] = rules.check_description(data.description)
    conda, pip = rules.check_libraries(
        env.conda_libraries if data.conda_libraries is None else data.conda_libraries,
        env.pip_libraries if data.pip_libraries is None else data.pip_libraries,
    )
    if data.conda_libraries is not None:
        changes["conda_libraries"] = [lib.entry for lib in conda]
    if data.pip_libraries is not None:
        changes["pip_libraries"] = [lib.entry for lib in pip]
    async with in_transaction():
        await _transition(env, Action.EDIT, **changes)
        event = await events.record(
            env.id, EventKind.UPDATED, actor_id=user.id, note=_changed(changes)
        )
    await events.publish(rt.events, [event], env)
    return await get_environment(user, env.id)


_FIELD_NAMES = {
    "full_name": "fullName",
    "description": "description",
    "conda_libraries": "condaLibraries",
    "pip_libraries": "pipLibraries",
}


def _changed(changes: dict[str, Any]) -> str:
    return "changed " + ", ".join(_FIELD_NAMES[name] for name in changes) if changes else ""


async def _start_version(
    rt: Runtime,
    user: User,
    env: Environment,
    action: Action,
    env_changes: dict[str, Any],
    **fields: Any,
) -> Version:
    """Claim the environment for one build and make (or reuse) its next version.

    The status change is the claim: among concurrent callers exactly one moves the
    environment out of a buildable status, the others get INVALID_STATE.
    """
    async with in_transaction():
        await _transition(env, action, **env_changes)
        latest = await Version.filter(environment_id=env.id).order_by("-number").first()
        number, reuse = next_version_number(None if latest is None else ref(latest))
        values = {
            "status": VersionStatus.QUEUED,
            "conda_libraries": env.conda_libraries,
            "pip_libraries": env.pip_libraries,
            "packages": [],
            "reverted_from": None,
            "location": None,
            "log": "",
            "lockfile": None,
            "channels": None,
            "started_at": None,
            "finished_at": None,
            **fields,
        }
        if reuse and latest is not None:
            # A failed build is always the latest version; the next build takes its number.
            latest.update_from_dict({**values, "attempt": latest.attempt + 1})
            latest.created_at = now()
            await latest.save()
            version = latest
        else:
            version = await Version.create(environment_id=env.id, number=number, **values)
        if action is Action.REVERT:
            event = await events.record(
                env.id,
                EventKind.REVERTED,
                actor_id=user.id,
                number=version.number,
                note=f"to version {version.reverted_from}",
            )
        else:
            event = await events.record(
                env.id, EventKind.BUILD_QUEUED, actor_id=user.id, number=version.number
            )
    await events.publish(rt.events, [event], env)
    return version


async def build_environment(rt: Runtime, user: User, env_id: str) -> Version:
    env = await _load(user, env_id)
    access.require_creator(actor(user), facts(env), "build")
    rules.check_libraries(env.conda_libraries, env.pip_libraries)
    version = await _start_version(rt, user, env, Action.BUILD, {})
    await rt.queue.enqueue(version.id, version.attempt)
    return version


async def revert_environment(rt: Runtime, user: User, env_id: str, number: int) -> Version:
    env = await _load(user, env_id)
    access.require_creator(actor(user), facts(env), "revert")
    transition(Action.REVERT, env.status)
    versions = await Version.filter(environment_id=env.id)
    target_ref = revert_target([ref(v) for v in versions], number)
    target = next(v for v in versions if v.number == target_ref.number)
    # Reverting also makes the reverted-to libraries the environment's requested ones.
    libraries = {
        "conda_libraries": target.conda_libraries,
        "pip_libraries": target.pip_libraries,
    }
    version = await _start_version(
        rt, user, env, Action.REVERT, libraries, reverted_from=target.number
    )
    await rt.queue.enqueue(version.id, version.attempt)
    return version


async def submit_environment(rt: Runtime, user: User, env_id: str) -> Environment:
    env = await _load(user, env_id)
    access.require_creator(actor(user), facts(env), "submit")
    versions = await Version.filter(environment_id=env.id)
    transition(Action.SUBMIT, env.status)
    active = active_version([ref(v) for v in versions])
    if active is None:
        raise InvalidState("This environment has no successful build to submit.")
    failed = [v for v in versions if v.status is VersionStatus.FAILED]
    async with in_transaction():
        await _transition(env, Action.SUBMIT, submitted_number=active.number, submitted_at=now())
        # Submitting deletes every failed version for good.
        await Version.filter(environment_id=env.id, status=VersionStatus.FAILED).delete()
        event = await events.record(
            env.id, EventKind.SUBMITTED, actor_id=user.id, number=active.number
        )
    await events.publish(rt.events, [event], env)
    for version in failed:
        if version.location:
            await rt.builder.discard(version.location)
    return await get_environment(user, env.id)


async def approve_environment(
    rt: Runtime, user: User, env_id: str, acknowledge_violations: bool = False
) -> Environment:
    """Publish the submitted version. Refused while it has policy violations, unless the
    admin acknowledges them: the acknowledgment, naming them, is the event's note."""
    env = await _load(user, env_id)
    access.require_reviewer(actor(user), facts(env), "approve")
    transition(Action.APPROVE, env.status)
    submitted = await Version.get_or_none(environment_id=env.id, number=env.submitted_number)
    found = (
        await policies.violations_of(submitted, env.organization_id)
        if submitted is not None
        else []
    )
    if found and not acknowledge_violations:
        raise InvalidState(
            f"Version {env.submitted_number} breaks the organization's package policy: "
            f"{governance.describe(found)}. Approve with acknowledgeViolations: true to "
            "publish it anyway.",
            violations=[
                {"name": v.name, "manager": v.manager.value, "version": v.version, "rule": v.rule}
                for v in found
            ],
        )
    note = f"acknowledged policy violations: {governance.describe(found)}" if found else None
    async with in_transaction():
        await _transition(
            env, Action.APPROVE, published_number=env.submitted_number, published_at=now()
        )
        event = await events.record(
            env.id, EventKind.APPROVED, actor_id=user.id, number=env.submitted_number, note=note
        )
    await events.publish(rt.events, [event], env)
    return await get_environment(user, env.id)


async def reject_environment(rt: Runtime, user: User, env_id: str, feedback: str) -> Environment:
    env = await _load(user, env_id)
    access.require_reviewer(actor(user), facts(env), "reject")
    text = rules.check_feedback(feedback)
    async with in_transaction():
        await _transition(env, Action.REJECT, review_feedback=text)
        event = await events.record(
            env.id, EventKind.REJECTED, actor_id=user.id, number=env.submitted_number, note=text
        )
    await events.publish(rt.events, [event], env)
    return await get_environment(user, env.id)


async def deprecate_environment(rt: Runtime, user: User, env_id: str) -> Environment:
    env = await _load(user, env_id)
    access.require_reviewer(actor(user), facts(env), "deprecate")
    async with in_transaction():
        await _transition(env, Action.DEPRECATE)
        event = await events.record(
            env.id, EventKind.DEPRECATED, actor_id=user.id, number=env.published_number
        )
    await events.publish(rt.events, [event], env)
    return await get_environment(user, env.id)


async def activate_environment(rt: Runtime, user: User, env_id: str) -> tuple[Environment, Version]:
    env = await get_environment(user, env_id)
    versions = list(env.versions)
    active = active_version([ref(v) for v in versions])
    source = access.activation_source(actor(user), facts(env), active is not None)
    if source == access.PUBLISHED:
        number = env.published_number
    else:
        assert active is not None  # activation_source refuses an environment with no success
        number = active.number
    chosen = next(v for v in versions if v.number == number)
    if chosen.archived:
        # The retention policy never archives the active, submitted or published version,
        # so only a database edited by hand gets here.
        raise InvalidState(
            f"Version {chosen.number}'s built files were removed (archived): revert to it to "
            "rebuild it from its lock file."
        )
    # Usage is counted from these events (Environment.usage, deprecation candidates).
    event = await events.record(env.id, EventKind.ACTIVATED, actor_id=user.id, number=number)
    await events.publish(rt.events, [event], env)
    return env, chosen
