"""Execution of GraphQL operations: graphql-core's, with one shortcut for long lists of flat
objects.

A listing's response is mostly leaves of small objects: 1,000 environments of 3 versions of
30 packages are 270,000 `name`, `version` and `manager` fields. graphql-core completes each
with its general machinery (a resolve info, a path, an awaitable check, a non-null check),
which costs more than all the rest of the request. Lists whose items are objects whose
selected fields are all leaves read from attributes (strawberry's basic fields, and
`__typename`) are completed here in one loop instead, calling the same resolvers and the
same output coercion. Whenever the shortcut would have to decide anything else (a null
where none is allowed, a value a scalar refuses, an awaitable, @defer, @stream, middleware,
an `is_type_of` check) it gives the list back to graphql-core, so results and errors are
always graphql-core's own; tests/graphql/test_execution.py compares the two on every list
type of the schema.

The listings of environments go further: their resolvers return a Listing (their query),
which FastListsContext completes from the database's rows when the selection allows
(app/graphql/listing.py) and ListingsContext, graphql-core's plain execution, from objects.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLString,
    is_leaf_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from app.graphql import listing
from app.graphql.listing import Edges, Listing

# One selected field of a flat object: (response key, how to read it or None for
# __typename, how to coerce it, whether it is non-null).
_Leaf = tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any], bool]
# How to complete a list's items: (the object type, its selected leaves, items non-null).
_Plan = tuple[GraphQLObjectType, list[_Leaf], bool]


class _GiveBack(Exception):
    """The shortcut cannot complete this list as graphql-core would: let it."""


class ListingsContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, where a listing resolver's value (a Listing: its query)
    becomes its objects; FastListsContext completes it from rows where it can."""

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        if type(result) is Listing or type(result) is Edges:
            return self._complete_source(
                return_type, field_details_list, info, path, result, position_context
            )
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    async def _complete_source(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        source: Listing | Edges,
        position_context: Any,
    ) -> Any:
        """A listing's environments, or a connection's edges, from their objects, by
        graphql-core."""
        if isinstance(source, Listing):
            found = source.objects(await source.query)
        else:
            found = source.objects()
        completed = super().complete_value(
            return_type, field_details_list, info, path, found, position_context
        )
        if self.is_awaitable(completed):
            completed = await completed
        return completed


class FastListsContext(ListingsContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plans by (item type, id of the field's node list), kept alive with the list, as
        # graphql-core memoizes collected subfields: one per field of the document.
        self._plans: dict[tuple[Any, int], tuple[FieldDetailsList, _Plan | None]] = {}

    async def _complete_source(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        source: Listing | Edges,
        position_context: Any,
    ) -> Any:
        """From rows (app/graphql/listing.py) when the selection allows."""
        if self._plain(field_details_list, path):
            try:
                if isinstance(source, Listing):
                    made = listing.plan(self, return_type, field_details_list)
                    if made is not None:
                        return await listing.complete(made, source.query)
                else:
                    edges = listing.edges_plan(self, return_type, field_details_list)
                    if edges is not None:
                        return await listing.complete_edges(edges, source)
            except listing.GiveBack:
                pass
        return await super()._complete_source(
            return_type, field_details_list, info, path, source, position_context
        )

    def _plain(self, field_details_list: FieldDetailsList, path: Path) -> bool:
        """No middleware and no @stream: what the rows paths need."""
        middleware = self.middleware_manager is not None and self.middleware_manager.middlewares
        return not middleware and not self.get_stream_usage(field_details_list, path)

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo,
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        if isinstance(items, list | tuple) and items:
            plan = self._plan(item_type, field_details_list, path)
            if plan is not None:
                try:
                    return _complete_flat(plan, items)
                except _GiveBack:
                    pass
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _plan(
        self, item_type: GraphQLOutputType, field_details_list: FieldDetailsList, path: Path
    ) -> _Plan | None:
        key = (item_type, id(field_details_list))
        cached = self._plans.get(key)
        if cached is None:
            cached = (field_details_list, self._make_plan(item_type, field_details_list, path))
            self._plans[key] = cached
        return cached[1]

    def _make_plan(
        self, item_type: GraphQLOutputType, field_details_list: FieldDetailsList, path: Path
    ) -> _Plan | None:
        non_null_items = is_non_null_type(item_type)
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if not is_object_type(object_type) or object_type.is_type_of is not None:
            return None
        # strawberry passes a manager on every request, empty unless an extension resolves
        if (self.middleware_manager is not None and self.middleware_manager.middlewares) or (
            self.get_stream_usage(field_details_list, path)
        ):
            return None
        grouped, new_defer_usages, forbidden = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages or forbidden:
            return None
        leaves: list[_Leaf] = []
        for response_key, details in grouped.items():
            if any(d.defer_usage is not None for d in details):
                return None
            name = details[0].node.name.value
            field = self.schema.get_field(object_type, name)
            if field is None:
                return None
            leaf_type = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if not is_leaf_type(leaf_type):
                return None
            if name == "__typename":
                leaves.append((response_key, None, _coercer(leaf_type), True))
                continue
            getter = _attribute_getter(field)
            if getter is None:
                return None
            leaves.append((response_key, getter, _coercer(leaf_type), is_non_null_type(field.type)))
        return (object_type, leaves, non_null_items)


def _attribute_getter(field: GraphQLField) -> Callable[[Any], Any] | None:
    """How a basic field reads its value: strawberry marks the resolvers of fields without
    one of their own, which read an attribute through the schema's default resolver
    (getattr unless configured otherwise). Anything else may need arguments, an info
    object or await."""
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None
    definition = field.extensions.get("strawberry-definition")
    if getattr(definition, "default_resolver", None) is getattr:
        return attrgetter(definition.python_name)  # type: ignore[union-attr]
    return lambda item: resolve(item, None)


def _coercer(leaf_type: GraphQLLeafType) -> Callable[[Any], Any]:
    """The leaf type's output coercion, skipped where it is the identity: a str for String
    and ID, a bool for Boolean, an int within 32 bits for Int; an enum member's name is
    remembered."""
    coerce = leaf_type.coerce_output_value
    if leaf_type is GraphQLString or leaf_type is GraphQLID:
        return lambda value: value if type(value) is str else coerce(value)
    if leaf_type is GraphQLBoolean:
        return lambda value: value if type(value) is bool else coerce(value)
    if leaf_type is GraphQLInt:
        return lambda value: (
            value if type(value) is int and -(2**31) <= value < 2**31 else coerce(value)
        )
    if isinstance(leaf_type, GraphQLEnumType):
        names: dict[Any, Any] = {}

        def enum_name(value: Any) -> Any:
            try:
                return names[value]
            except (KeyError, TypeError):  # not seen yet, or unhashable
                name = coerce(value)
                if isinstance(value, enum.Enum):
                    names[value] = name
                return name

        return enum_name
    return coerce


def _complete_flat(plan: _Plan, items: list[Any] | tuple[Any, ...]) -> list[Any]:
    object_type, leaves, non_null_items = plan
    type_name = object_type.name
    completed: list[Any] = []
    append = completed.append
    for item in items:
        if item is None:
            if non_null_items:
                raise _GiveBack
            append(None)
            continue
        row: dict[str, Any] = {}
        for response_key, getter, coerce, non_null in leaves:
            if getter is None:
                row[response_key] = type_name
                continue
            value = getter(item)
            if value is None or value is Undefined:
                if non_null:
                    raise _GiveBack
                row[response_key] = None
                continue
            try:
                coerced = coerce(value)
            except Exception:
                raise _GiveBack from None
            if coerced is None or coerced is Undefined:
                raise _GiveBack
            row[response_key] = coerced
        append(row)
    return completed
