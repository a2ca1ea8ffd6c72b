"""How versions are read for listings: without the long columns, package lists loaded only
for the versions that need them, each kind in one query whatever the number of rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from tortoise.fields import BigIntField, CharField, IntField, SmallIntField, TextField
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.db import queries
from app.db.models import User, Version


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


# -- rows as the database driver gives them -------------------------------------------------
# For listings of thousands of environments, making a Tortoise model per row costs more than
# the query (measured: 3,000 versions with their package lists, 244 ms as models, 217 ms
# through values_list, 94 ms as driver rows with the lists decoded). These read rows and
# convert only the columns whose driver value is not already the model's (datetimes, JSON,
# booleans), with the model field's own conversion.

Row = Sequence[Any]
# Ids per statement: far below SQLite's and PostgreSQL's limits on bound parameters.
CHUNK = 5000


def db_columns(model: type[Model]) -> frozenset[str]:
    return frozenset(model._meta.db_fields)


def conversion(model: type[Model], column: str) -> Callable[[Any], Any] | None:
    """How a column's driver value becomes the model attribute's value: None where the
    driver's value already is (integers, strings), else the model field's conversion."""
    field = model._meta.fields_map[column]
    plain = IntField | BigIntField | SmallIntField | CharField | TextField
    if isinstance(field, plain) and not isinstance(field, CharEnumFieldInstance):
        return None
    return field.to_python_value


async def query_rows(query: QuerySet[Any], columns: Sequence[str]) -> list[Row]:
    """The rows of `query` (with its filters, order and limit) holding `columns`, in that
    order, unconverted: one statement."""
    selected = query.values_list(*columns)
    # Tortoise's own path to a statement and its parameters (QuerySet.sql gives no
    # parameters); the pinned version's API, covered by the listing tests on both backends.
    selected._choose_db_if_not_chosen()
    selected._make_query()
    statement, parameters = selected.query.get_parameterized_sql()
    _, found = await selected._db.execute_query(statement, parameters)
    # typed as dicts; sqlite3.Row and asyncpg.Record, which both read by position
    return cast(list[Row], list(found))


async def version_rows(env_ids: Sequence[int], columns: Sequence[str]) -> list[Row]:
    """Every version of the environments, by environment id then number, holding `columns`
    (environment_id first): one statement."""
    assert columns[0] == "environment_id"
    return await queries.version_rows(env_ids, columns) if env_ids else []


async def user_rows(user_ids: Sequence[int], columns: Sequence[str]) -> dict[int, Row]:
    """Users by id, holding `columns` (id first)."""
    assert columns[0] == "id"
    found: dict[int, Row] = {}
    ordered = sorted(set(user_ids))
    for start in range(0, len(ordered), CHUNK):
        for row in await query_rows(User.filter(id__in=ordered[start : start + CHUNK]), columns):
            found[row[0]] = row
    return found
