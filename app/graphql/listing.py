"""Listings of environments completed from database rows.

`environments` and `pendingEnvironments` can return thousands of environments with their
versions and packages. Through the general path each environment and version becomes a
Tortoise model, then a Strawberry object, then graphql-core completes every field of it:
for 1,000 environments of 3 versions of 30 packages that was ~10 times the raw SQL fetch
of the same rows. Those resolvers return a `Listing` instead (its query, not its objects);
the execution context (app/graphql/execution.py) asks `plan` whether the operation's
selection is one this module completes: the environments' basic fields, their creator's,
their versions (`versions`, `latestVersion`, `activeVersion`, `publishedVersion`,
`submittedVersion`) with the versions' basic fields and packages, and `__typename`
anywhere, with aliases, fragments and @skip/@include. Then the response is made straight
from the rows (`complete`): one statement for the environments, one for their versions
(and one for their creators), each value converted as the model field converts it and
coerced as its GraphQL type does. Any other selection, and any value the shortcut would
have to make an error or a null of, goes the general way, so that results and errors are
always graphql-core's; tests/graphql/test_listing_rows.py compares both on every field it
covers, on SQLite and PostgreSQL.

`searchEnvironments` pages the same way: its connection's `edges` are an `Edges` (the
page's ids and cursors), whose nodes `complete_edges` makes from rows like a listing's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import partial
from typing import Any, Protocol

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
)
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList
from graphql.execution.values import get_argument_values
from tortoise.models import Model
from tortoise.queryset import QuerySet

from app.db import models
from app.domain import pages
from app.domain.errors import BadUserInput
from app.domain.requirements import PackageManager
from app.domain.statuses import VersionStatus
from app.domain.versions import VersionRef, active_version
from app.services import rows


class GiveBack(Exception):
    """The rows cannot be completed as graphql-core would complete the objects."""


@dataclass(frozen=True)
class Listing:
    """What a listing resolver returns: the query of its environments, and how to make
    its objects for the general path."""

    query: QuerySet[models.Environment]
    objects: Callable[[list[models.Environment]], list[Any]]


class Collector(Protocol):
    """What the plan needs of the execution context."""

    variable_values: Any
    hide_suggestions: bool

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields: ...


# A selected leaf: (response key, column position or None for __typename, the output
# value from the driver's value).
_Leaf = tuple[str, int | None, Callable[[Any], Any]]


@dataclass
class _Columns:
    """The columns a plan reads of one table, in the order of the statement."""

    model: type[Model]
    names: list[str] = field(default_factory=list)

    def position(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)


# What a package's selected fields are made of: its recorded name, version and manager (the
# GraphQL enum's name), or the type's name.
_PACKAGE_PARTS = {"name": 0, "version": 1, "manager": 2, "__typename": 3}


@dataclass
class _PackagesPlan:
    keys: list[str]
    parts: list[int]
    type_name: str


@dataclass
class _VersionPlan:
    leaves: list[_Leaf] = field(default_factory=list)
    packages: list[tuple[str, _PackagesPlan]] = field(default_factory=list)
    # the response keys in the selection's order, when the leaves-first order differs
    order: list[str] | None = None


# Which of an environment's versions a field selects: all (with first/after), or one.
_Pick = Callable[[Sequence[rows.Row], int | None, int | None, int, int], Any]


@dataclass
class Plan:
    environments: _Columns
    versions: _Columns
    users: _Columns
    leaves: list[_Leaf] = field(default_factory=list)
    creator: list[tuple[str, list[_Leaf]]] = field(default_factory=list)
    # (response key, all versions?, first, after, which one, the version's plan)
    version_fields: list[tuple[str, bool, int | None, int | None, str, _VersionPlan]] = field(
        default_factory=list
    )
    # the response keys in the selection's order, when the leaves-first order differs
    order: list[str] | None = None


_VERSION_FIELDS = {
    "versions",
    "latestVersion",
    "activeVersion",
    "publishedVersion",
    "submittedVersion",
}


def plan(
    context: Collector, return_type: GraphQLOutputType, details: FieldDetailsList
) -> Plan | None:
    """How to complete a listing of `return_type` ([Environment!]!) from rows, or None when
    its selection needs the general path."""
    env_type = _listed_object(return_type, "Environment")
    if env_type is None:
        return None
    return _environment_plan(context, env_type, details)


def edges_plan(
    context: Collector, return_type: GraphQLOutputType, details: FieldDetailsList
) -> EdgesPlan | None:
    """How to complete a connection's `edges` ([EnvironmentEdge!]!) from rows: their
    cursors, and their nodes as a listing; None when the selection needs the general path."""
    edge_type = _listed_object(return_type, "EnvironmentEdge")
    if edge_type is None:
        return None
    parts: list[tuple[str, str]] = []
    node: Plan | None = None
    try:
        for key, sub, field_def in _selected(context, edge_type, details):
            name = sub[0].node.name.value
            if name == "node":
                if node is not None:  # the node under two keys: the general path's
                    return None
                node = _environment_plan(context, _object(field_def.type), sub)
                if node is None:
                    return None
            elif name == "cursor":
                if _has_resolver(field_def):
                    return None
            elif name != "__typename":
                return None
            parts.append((key, name))
    except GiveBack:
        return None
    return EdgesPlan(parts, edge_type.name, node)


@dataclass
class EdgesPlan:
    parts: list[tuple[str, str]]  # (response key, "cursor" | "node" | "__typename")
    type_name: str
    node: Plan | None


def _environment_plan(
    context: Collector, env_type: GraphQLObjectType, details: FieldDetailsList
) -> Plan | None:
    made = Plan(
        environments=_Columns(models.Environment, ["id", "creator_id"]),
        # version_rows wants environment_id first; _pick reads number and status here
        versions=_Columns(models.Version, ["environment_id", "number", "status"]),
        users=_Columns(models.User, ["id"]),
    )
    # what picking a version reads of its environment
    made.environments.position("published_number")
    made.environments.position("submitted_number")
    try:
        selected = _selected(context, env_type, details)
        for key, sub, field_def in selected:
            name = sub[0].node.name.value
            if name == "creator":
                user_type = _object(field_def.type)
                made.creator.append((key, _leaves(context, user_type, sub, made.users)))
            elif name in _VERSION_FIELDS:
                version_type = _object(field_def.type)
                first, after = (None, None)
                if name == "versions":
                    first, after = _page(context, field_def, sub)
                made.version_fields.append(
                    (
                        key,
                        name == "versions",
                        first,
                        after,
                        name,
                        _version_plan(context, version_type, sub, made.versions),
                    )
                )
            else:
                made.leaves.append(_leaf(key, name, field_def, made.environments, env_type.name))
    except GiveBack:
        return None
    made.order = _order(
        [key for key, _, _ in selected],
        [
            *(key for key, _, _ in made.leaves),
            *(key for key, _ in made.creator),
            *(v[0] for v in made.version_fields),
        ],
    )
    return made


def _order(selected: list[str], made: list[str]) -> list[str] | None:
    """The selection's order of the response keys, where the rows path makes them in
    another (graphql-core keeps the selection's order, and so does its JSON)."""
    return None if selected == made else selected


def _listed_object(return_type: GraphQLOutputType, name: str) -> GraphQLObjectType | None:
    inner = return_type
    if isinstance(inner, GraphQLNonNull):
        inner = inner.of_type
    if not isinstance(inner, GraphQLList) or not isinstance(inner.of_type, GraphQLNonNull):
        return None
    item = inner.of_type.of_type
    if not isinstance(item, GraphQLObjectType) or item.name != name:
        return None
    return item


def _object(type_: GraphQLOutputType) -> GraphQLObjectType:
    """The object type of a field's type ([X!]!, X!, X)."""
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLObjectType) or type_.is_type_of is not None:
        raise GiveBack
    return type_


def _selected(
    context: Collector, object_type: GraphQLObjectType, details: FieldDetailsList
) -> list[tuple[str, FieldDetailsList, GraphQLField]]:
    """The fields selected on `object_type`, by response key; GiveBack on @defer."""
    collected = context.collect_subfields(object_type, details)
    if collected.new_defer_usages:
        raise GiveBack
    found = []
    for key, sub in collected.grouped_field_set.items():
        if any(d.defer_usage is not None for d in sub):
            raise GiveBack
        name = sub[0].node.name.value
        if name == "__typename":
            found.append((key, sub, _TYPENAME))
            continue
        field_def = object_type.fields.get(name)
        if field_def is None:
            raise GiveBack
        found.append((key, sub, field_def))
    return found


_TYPENAME = GraphQLField(GraphQLNonNull(GraphQLString))


def _page(
    context: Collector, field_def: GraphQLField, details: FieldDetailsList
) -> tuple[int | None, int | None]:
    """`versions(first, after)`, checked as the resolver checks them (a refusal is the
    general path's to report)."""
    try:
        values = [
            get_argument_values(
                field_def,
                d.node,
                context.variable_values,
                d.fragment_variable_values,
                context.hide_suggestions,
            )
            for d in details
        ]
    except GraphQLError:
        raise GiveBack from None
    if any(v != values[0] for v in values):  # validation allows this only when equal
        raise GiveBack
    first, after = values[0].get("first"), values[0].get("after")
    try:
        pages.check_first(first, "versions")
        pages.check_after_number(after, "versions")
    except BadUserInput:
        raise GiveBack from None
    return first, after


def _version_plan(
    context: Collector,
    version_type: GraphQLObjectType,
    details: FieldDetailsList,
    columns: _Columns,
) -> _VersionPlan:
    made = _VersionPlan()
    selected = _selected(context, version_type, details)
    for key, sub, field_def in selected:
        name = sub[0].node.name.value
        if name == "packages":
            package_type = _object(field_def.type)
            made.packages.append((key, _packages_plan(context, package_type, sub)))
            columns.position("packages")
        else:
            made.leaves.append(_leaf(key, name, field_def, columns, version_type.name))
    made.order = _order(
        [key for key, _, _ in selected],
        [*(key for key, _, _ in made.leaves), *(key for key, _ in made.packages)],
    )
    return made


def _packages_plan(
    context: Collector, package_type: GraphQLObjectType, details: FieldDetailsList
) -> _PackagesPlan:
    """Packages are recorded as {"name", "version", "manager"} (types._installed)."""
    keys, parts = [], []
    for key, sub, field_def in _selected(context, package_type, details):
        name = sub[0].node.name.value
        if name not in _PACKAGE_PARTS or (name != "__typename" and _has_resolver(field_def)):
            raise GiveBack
        keys.append(key)
        parts.append(_PACKAGE_PARTS[name])
    return _PackagesPlan(keys, parts, package_type.name)


def _has_resolver(field_def: GraphQLField) -> bool:
    return not getattr(field_def.resolve, "_is_default", False)


def _leaves(
    context: Collector, object_type: GraphQLObjectType, details: FieldDetailsList, columns: _Columns
) -> list[_Leaf]:
    return [
        _leaf(key, sub[0].node.name.value, field_def, columns, object_type.name)
        for key, sub, field_def in _selected(context, object_type, details)
    ]


def _leaf(key: str, name: str, field_def: GraphQLField, columns: _Columns, type_name: str) -> _Leaf:
    """A basic field read from its column: Strawberry's default resolver reads the
    attribute of the field's Python name, which the types' `of` copy from the model's
    column of that name."""
    if name == "__typename":
        return (key, None, _constant(type_name))
    definition = field_def.extensions.get("strawberry-definition")
    if definition is None or _has_resolver(field_def) or field_def.args:
        raise GiveBack
    column = definition.python_name
    if column not in rows.db_columns(columns.model):
        raise GiveBack
    return (key, columns.position(column), _output(field_def.type, columns.model, column))


def _constant(value: str) -> Callable[[Any], Any]:
    return lambda _: value


def _output(type_: GraphQLOutputType, model: type[Model], column: str) -> Callable[[Any], Any]:
    """The completed value of a column's driver value: converted as the model field
    converts it, then coerced as the GraphQL type coerces it; GiveBack where graphql-core
    would report an error or coerce something unusual."""
    non_null = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    convert = rows.conversion(model, column)
    enum_type = getattr(model._meta.fields_map[column], "enum_type", None)
    coerce: Callable[[Any], Any]
    if isinstance(inner, GraphQLList):
        item = inner.of_type
        if not (isinstance(item, GraphQLNonNull) and item.of_type is GraphQLString):
            raise GiveBack
        coerce = _strings
    elif isinstance(inner, GraphQLEnumType) and enum_type is not None:
        # the model makes a member of the stored value, graphql-core shows its name
        names = {m.value: m.name for m in enum_type}
        if not set(names.values()) <= set(inner.values):
            raise GiveBack
        convert, coerce = None, partial(_named, names)
    else:
        coerce = _coercion(inner)
    if convert is None:
        # every coercion refuses None
        return coerce if non_null else partial(_nullable, coerce)

    def output(raw: Any) -> Any:
        value = None if raw is None else convert(raw)
        if value is None:
            if non_null:
                raise GiveBack
            return None
        return coerce(value)

    return output


def _named(names: dict[Any, str], value: Any) -> str:
    try:
        return names[value]
    except (KeyError, TypeError):
        raise GiveBack from None


def _nullable(coerce: Callable[[Any], Any], raw: Any) -> Any:
    return None if raw is None else coerce(raw)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list) or any(type(v) is not str for v in value):
        raise GiveBack
    return list(value)


def _coercion(type_: Any) -> Callable[[Any], Any]:
    if type_ is GraphQLString:
        return partial(_exactly, str)
    if type_ is GraphQLID:
        return _id
    if type_ is GraphQLInt:
        return _int
    if type_ is GraphQLBoolean:
        return partial(_exactly, bool)
    if type_ is GraphQLFloat:
        return _float
    if isinstance(type_, GraphQLEnumType):
        return _enum_name
    if getattr(type_, "name", None) == "DateTime":
        return _datetime
    raise GiveBack


def _exactly(kind: type, value: Any) -> Any:
    """The value when it is of exactly this type (what the type's coercion passes as is)."""
    if type(value) is not kind:
        raise GiveBack
    return value


def _id(value: Any) -> str:
    # the types make ids with strawberry.ID(str(row id))
    if type(value) is not int:
        raise GiveBack
    return str(value)


def _int(value: Any) -> int:
    if type(value) is not int or not -(2**31) <= value < 2**31:
        raise GiveBack
    return value


def _float(value: Any) -> float:
    # Version.of: float(size_bytes)
    if type(value) is not int:
        raise GiveBack
    number = float(value)
    if not math.isfinite(number):
        raise GiveBack
    return number


def _enum_name(value: Any) -> str:
    if not isinstance(value, Enum):
        raise GiveBack
    return value.name


def _datetime(value: Any) -> str:
    # strawberry's DateTime serializes with isoformat
    if not isinstance(value, datetime):
        raise GiveBack
    return value.isoformat()


# -- completion ----------------------------------------------------------------------------


async def complete(made: Plan, query: QuerySet[models.Environment]) -> list[dict[str, Any]]:
    """The listing's response from its rows: a statement per table the selection reads."""
    return await _complete_rows(made, await rows.query_rows(query, made.environments.names))


async def complete_edges(made: EdgesPlan, edges: Edges) -> list[dict[str, Any]]:
    """A connection's edges: each cursor, and the node completed from rows."""
    nodes: list[dict[str, Any]] = []
    if made.node is not None and edges.ids:
        query = models.Environment.filter(id__in=edges.ids)
        found = await rows.query_rows(query, made.node.environments.names)
        by_id = {row[0]: row for row in found}
        if len(by_id) != len(edges.ids):  # gone since the page was read
            raise GiveBack
        nodes = await _complete_rows(made.node, [by_id[i] for i in edges.ids])
    completed = []
    for at, cursor in enumerate(edges.cursors):
        values = {"cursor": cursor, "__typename": made.type_name}
        completed.append(
            {key: nodes[at] if name == "node" else values[name] for key, name in made.parts}
        )
    return completed


@dataclass(frozen=True)
class Edges:
    """What a connection's `edges` resolves to: its environments' ids and cursors, in the
    page's order, and how to make its objects for the general path."""

    ids: list[int]
    cursors: list[str]
    objects: Callable[[], list[Any]]


async def _complete_rows(made: Plan, env_rows: list[rows.Row]) -> list[dict[str, Any]]:
    env_ids = [row[0] for row in env_rows]
    versions: dict[int, list[rows.Row]] = {}
    if made.version_fields and env_ids:
        versions = {i: [] for i in env_ids}
        for row in await rows.version_rows(env_ids, made.versions.names):
            versions[row[0]].append(row)
    users: dict[int, rows.Row] = {}
    if made.creator and env_ids:
        users = await rows.user_rows([row[1] for row in env_rows], made.users.names)
    published = made.environments.names.index("published_number")
    submitted = made.environments.names.index("submitted_number")
    version_plans = [
        (key, every, first, after, which, _version_maker(vplan, made.versions))
        for key, every, first, after, which, vplan in made.version_fields
    ]
    completed = []
    order = made.order
    for row in env_rows:
        item = _fill(made.leaves, row)
        for key, leaves in made.creator:
            creator = users.get(row[1])
            if creator is None:  # the general path's error to report
                raise GiveBack
            item[key] = _fill(leaves, creator)
        if version_plans:
            found = versions[row[0]]
            for key, every, first, after, which, make in version_plans:
                if every:
                    chosen = [v for v in found if after is None or v[1] > after][:first]
                    item[key] = [make(v) for v in chosen]
                else:
                    one = _pick(which, found, row[published], row[submitted])
                    item[key] = None if one is None else make(one)
        completed.append(item if order is None else {key: item[key] for key in order})
    return completed


def _fill(leaves: list[_Leaf], row: rows.Row) -> dict[str, Any]:
    return {key: output(None if at is None else row[at]) for key, at, output in leaves}


def _version_maker(vplan: _VersionPlan, columns: _Columns) -> Callable[[rows.Row], dict[str, Any]]:
    packages_at = columns.names.index("packages") if vplan.packages else -1
    decode = rows.conversion(models.Version, "packages")
    leaves, order = vplan.leaves, vplan.order

    def make(row: rows.Row) -> dict[str, Any]:
        item = _fill(leaves, row)
        if packages_at >= 0:
            recorded = row[packages_at]
            recorded = [] if recorded is None else decode(recorded) if decode else recorded
            for key, pplan in vplan.packages:
                item[key] = _packages(pplan, recorded)
        return item if order is None else {key: item[key] for key in order}

    return make


# A recorded manager's GraphQL enum name (the general path makes the enum member of the
# value, which graphql-core shows by its name).
_MANAGER_NAMES = {m.value: m.name for m in PackageManager}


def _packages(pplan: _PackagesPlan, recorded: Any) -> list[dict[str, Any]]:
    """A version's packages: as types._installed reads every recorded package's name,
    version and manager (so a missing one is an error whatever the selection), made here in
    one loop per selection size (this is most of a listing's response)."""
    if not isinstance(recorded, list):
        raise GiveBack
    managers = _MANAGER_NAMES
    type_name = pplan.type_name
    keys, parts = pplan.keys, pplan.parts
    natural = parts == [0, 1, 2]  # name version manager, as clients ask: made at once
    try:
        found: list[Any] = []
        append = found.append
        for p in recorded:
            name, version, manager = p["name"], p["version"], managers[p["manager"]]
            if type(name) is not str or type(version) is not str:
                raise GiveBack
            if natural:
                append({keys[0]: name, keys[1]: version, keys[2]: manager})
            else:
                append((name, version, manager, type_name))
    except (KeyError, TypeError):  # not a recorded package: the general path's error
        raise GiveBack from None
    if natural:
        return found
    if len(parts) == 3:
        (k1, k2, k3), (a, b, c) = keys, parts
        return [{k1: t[a], k2: t[b], k3: t[c]} for t in found]
    if len(parts) == 2:
        (k1, k2), (a, b) = keys, parts
        return [{k1: t[a], k2: t[b]} for t in found]
    if len(parts) == 1:
        k1, a = keys[0], parts[0]
        return [{k1: t[a]} for t in found]
    pairs = list(zip(keys, parts, strict=True))
    return [{k: t[i] for k, i in pairs} for t in found]


# A stored version status as the model's enum field reads it.
_VERSION_STATUSES = {s.value: s for s in VersionStatus}


def _pick(
    which: str, found: list[rows.Row], published: int | None, submitted: int | None
) -> rows.Row | None:
    """The version a single-version field shows (Environment's resolvers, by number)."""
    if which == "latestVersion":
        return found[-1] if found else None
    if which == "activeVersion":
        try:
            active = active_version([VersionRef(v[1], _VERSION_STATUSES[v[2]]) for v in found])
        except KeyError:  # not a status: the general path's error
            raise GiveBack from None
        number = active.number if active else None
    elif which == "publishedVersion":
        number = published
    else:
        number = submitted
    if number is None:
        return None
    return next((v for v in found if v[1] == number), None)
