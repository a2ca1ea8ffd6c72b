"""How versions are read for listings: without the long columns, package lists loaded only
for the versions that need them, each kind in one query whatever the number of rows."""

from __future__ import annotations

from collections.abc import Sequence

from app.db.models import Version


def version_columns(packages: bool = True) -> list[str]:
    """A version's columns but its log and lock file, which can be long; the GraphQL `log`
    field loads logs, batched (logs.current_logs), `lockfile` its own. Listings leave out
    the package lists too (packages=False): `loaded_packages` tells, `with_packages` loads."""
    # Read at call time: Tortoise adds the foreign key's column (environment_id) at init.
    left_out = {"log", "lockfile"} if packages else {"log", "lockfile", "packages"}
    return sorted(set(Version._meta.db_fields) - left_out)


def loaded_packages(version: Version) -> list[dict[str, str]] | None:
    """The version's package list when it was read with it (a model read with only() lacks
    the attribute), else None."""
    found: list[dict[str, str]] | None = version.__dict__.get("packages")
    return found


async def package_lists(version_ids: Sequence[int]) -> list[list[dict[str, str]]]:
    """The package lists of versions, in the order of their ids: one query."""
    rows = dict(await Version.filter(id__in=set(version_ids)).values_list("id", "packages"))
    return [rows.get(i) or [] for i in version_ids]


async def with_packages(versions: Sequence[Version]) -> None:
    """Give the versions read without their package lists those lists: one query, or none."""
    missing = [v for v in versions if loaded_packages(v) is None]
    if missing:
        for version, packages in zip(
            missing, await package_lists([v.id for v in missing]), strict=True
        ):
            version.packages = packages


async def versions_of(env_ids: Sequence[int], packages: bool = False) -> list[list[Version]]:
    """Each environment's versions, by number, without logs, lock files and, unless asked
    for, package lists: one query whatever the number of environments."""
    found: dict[int, list[Version]] = {i: [] for i in env_ids}
    for version in (
        await Version.filter(environment_id__in=set(env_ids))
        .only(*version_columns(packages=packages))
        .order_by("environment_id", "number")
    ):
        found[version.environment_id].append(version)
    return [found[i] for i in env_ids]
