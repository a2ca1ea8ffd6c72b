"""The retention policy at work (app/domain/retention.py says which versions it keeps).

It runs after each successful build, in the process that built it (ENVYARD_KEEP_VERSIONS),
and on demand with `envyard gc`. A version is marked archived (with an ARCHIVED event) in
one transaction before its files are removed: a revert that starts meanwhile sees the mark
and rebuilds it from its lock file instead of reusing files about to go.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from app.builders import Builder, BuildFailed, Exact, Stored
from app.builders.lock import read_lock
from app.builders.process import ChildFailed
from app.db.models import Environment, Version
from app.db.queries import make_durable
from app.domain.requirements import PackageManager
from app.domain.retention import Held, check_keep, to_archive
from app.domain.statuses import EventKind, VersionStatus
from app.domain.versions import Package
from app.eventbus import EventBus
from app.services import events
from app.services.environments import packages_of
from app.services.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Archived:
    """One version the policy archived (or, in a dry run, would archive)."""

    organization: str
    short_name: str
    number: int
    size_bytes: int | None  # what the version added, as recorded when it was built
    freed: int | None  # bytes removed from this host; None: a dry run, or not known


def _held(version: Version) -> Held:
    return Held(
        version.number,
        version.status,
        version.archived,
        version.location,
        version.reverted_from,
    )


async def apply(
    builder: Builder,
    env_id: int,
    keep: int,
    dry_run: bool = False,
    bus: EventBus | None = None,
) -> list[Archived]:
    """Archive what the policy no longer keeps of one environment; ARCHIVED events go to
    `bus` (live dashboards) when given."""
    check_keep(keep)
    env = await Environment.get(id=env_id).prefetch_related("organization")
    versions = {v.number: v for v in await Version.filter(environment_id=env_id)}
    chosen = to_archive(
        [_held(v) for v in versions.values()],
        keep,
        pinned=(env.submitted_number, env.published_number),
    )
    done: list[Archived] = []
    for held in chosen:
        version = versions[held.number]
        stored = Stored(
            version.location or "",
            env.organization.name,
            env.short_name,
            version.number,
            version.size_bytes,
        )
        if dry_run:
            done.append(Archived(*_names(stored), version.size_bytes, None))
            continue
        async with in_transaction():
            claimed = await Version.filter(
                id=version.id, archived=False, status=VersionStatus.SUCCEEDED
            ).update(archived=True)
            if not claimed:  # another process archived it, or it changed meanwhile
                continue
            event = await events.record(
                env_id,
                EventKind.ARCHIVED,
                number=version.number,
                note=f"its built files were removed: the retention policy keeps {keep} "
                "versions besides the active, submitted and published ones",
            )
        await events.publish(bus, [event])
        freed: int | None
        try:
            await make_durable()  # the mark outlives a power loss that the removal does
            freed = await builder.archive(stored)
        except Exception as exc:  # the mark stays: `forget` removes what is left later
            log.warning(
                "removing the files of %s/%s version %s failed: %s",
                stored.organization,
                stored.short_name,
                stored.number,
                exc,
            )
            freed = None
        # archived before its size was measured: what its removal freed is its size
        if version.size_bytes is None and freed is not None:
            await Version.filter(id=version.id, size_bytes__isnull=True).update(size_bytes=freed)
        done.append(Archived(*_names(stored), version.size_bytes, freed))
    return done


def _names(stored: Stored) -> tuple[str, str, int]:
    return stored.organization, stored.short_name, stored.number


async def collect(
    builder: Builder, keep: int, dry_run: bool = False, bus: EventBus | None = None
) -> list[Archived]:
    """The policy over every environment (`envyard gc`): those with more than `keep`
    successful versions that still have their files."""
    check_keep(keep)
    rows = await Version.filter(status=VersionStatus.SUCCEEDED, archived=False).values_list(
        "environment_id", flat=True
    )
    unarchived = Counter(int(str(env_id)) for env_id in rows)
    done: list[Archived] = []
    for env_id, count in sorted(unarchived.items()):
        if count > keep:
            done += await apply(builder, env_id, keep, dry_run, bus)
    return done


async def after_build(rt: Runtime, env_id: int) -> None:
    """The policy after a successful build, when ENVYARD_KEEP_VERSIONS is set; a failure
    is logged, never the build's."""
    keep = rt.settings.keep_versions
    if keep is None:
        return
    try:
        for archived in await apply(rt.builder, env_id, keep, bus=rt.events):
            log.info(
                "archived %s/%s version %s (%s bytes freed)",
                archived.organization,
                archived.short_name,
                archived.number,
                archived.freed if archived.freed is not None else "?",
            )
    except Exception:
        log.exception("the retention policy failed for environment %s", env_id)


async def forget_archived(builder: Builder) -> int:
    """Remove what this host still holds of archived versions (workers, periodically)."""
    rows = await Version.filter(archived=True).values_list(
        "location",
        "environment__organization__name",
        "environment__short_name",
        "number",
    )
    stored = [Stored(str(loc or ""), str(org), str(short), int(n)) for loc, org, short, n in rows]
    return await builder.forget(stored) if stored else 0


async def exact_packages(version: Version) -> Exact:
    """What an archived version held, from its lock file (its record when it has none):
    what a restore makes again."""
    if not version.lockfile:
        return Exact(packages_of(version))
    try:
        found = await read_lock(version.lockfile)
    except ChildFailed as exc:
        raise BuildFailed(f"Version {version.number}'s lock file cannot be read: {exc}") from None
    return Exact(
        [
            *(
                Package(p["name"], p["version"], PackageManager.CONDA, p["build"])
                for p in found["conda"]
            ),
            *(Package(p["name"], p["version"], PackageManager.PIP) for p in found["pypi"]),
        ]
    )
