"""Checks on a parsed document before GraphQL validates it.

Validation is the expensive part of a hostile document: graphql-core's overlapping-fields
rule compares same-named fields pairwise, so 1,249 repeated `me { id }` took about 0.7 s of
the event loop, stalling every other client. Counting a document's selections is linear and
cheap, so documents over the bound are refused before validation runs. The same place
refuses what GraphQL itself forbids but Strawberry would run anyway: a document with several
operations and no operationName (Strawberry picks the first), and a subscription over HTTP
(Strawberry executes it as a query and fails with an internal error).
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from starlette.websockets import WebSocket
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.types.graphql import OperationType

DEFAULT_MAX_TOKENS = 2000
DEFAULT_MAX_SELECTIONS = 300


def count_selections(document: DocumentNode) -> int:
    """Fields, fragment spreads and inline fragments in the whole document."""
    count = 0
    stack: list[SelectionSetNode] = [
        definition.selection_set
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        selection_set = stack.pop()
        for selection in selection_set.selections:
            count += 1
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)
    return count


def request_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


class RequestGuard(SchemaExtension):
    """Bounds tokens (at parse) and selections (before validation); refuses ambiguous
    documents and subscriptions sent over HTTP. Limits come from the runtime's settings."""

    def _limits(self) -> tuple[int, int]:
        runtime = getattr(self.execution_context.context, "runtime", None)
        if runtime is None:  # a schema executed without envyard's context (unit tests)
            return DEFAULT_MAX_TOKENS, DEFAULT_MAX_SELECTIONS
        return runtime.settings.max_query_tokens, runtime.settings.max_query_selections

    def on_operation(self) -> Iterator[None]:
        # graphql-core's parser stops at the bound instead of reading the whole document.
        self.execution_context.parse_options["max_tokens"] = self._limits()[0]
        yield

    def on_validate(self) -> Iterator[None]:
        problem = self._problem()
        if problem is not None:
            # Strawberry skips validation when errors are already set, and reports them.
            self.execution_context.pre_execution_errors = [request_error(problem)]
        yield

    def _problem(self) -> str | None:
        document = self.execution_context.graphql_document
        if document is None:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        # Strawberry keeps the operationName the client sent here; its public property
        # falls back to the first operation's name, which is the behaviour refused below.
        provided = self.execution_context._provided_operation_name
        if len(operations) > 1 and provided is None:
            names = ", ".join(op.name.value if op.name else "(anonymous)" for op in operations)
            return (
                f"This document holds {len(operations)} operations ({names}); "
                "say which one to run with operationName."
            )
        selections = count_selections(document)
        limit = self._limits()[1]
        if selections > limit:
            return (
                f"This document makes {selections} selections; at most {limit} are allowed "
                "(ENVYARD_MAX_QUERY_SELECTIONS)."
            )
        request = getattr(self.execution_context.context, "request", None)
        if operations and request is not None and not isinstance(request, WebSocket):
            try:
                kind = self.execution_context.operation_type
            except RuntimeError:  # no operation of that name: GraphQL itself says so
                return None
            if kind is OperationType.SUBSCRIPTION:
                return (
                    "Subscriptions run over WebSocket: connect to this same /graphql address "
                    "with the graphql-transport-ws protocol (GraphiQL at /graphql does so)."
                )
        return None


class CachedValidation(ValidationCache):
    """Validation results of documents seen recently, reused (validating a document costs
    more than executing a small one). Placed after RequestGuard: a document the guard
    refused is never validated, so the guard's refusal is never overwritten."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:
            yield
            return
        yield from super().on_validate()


# The depth and alias rules, made once: rule classes made per request would make every
# request's rule list new, and the validation cache miss.
_SHAPE_RULES = [
    *QueryDepthLimiter(max_depth=12).validation_rules,
    *MaxAliasesLimiter(max_alias_count=50).validation_rules,
]


def shape_rules() -> AddValidationRules:
    """A document's depth at most 12, its aliases at most 50."""
    return AddValidationRules(_SHAPE_RULES)
