"""graphql-transport-ws with a direct path for plain `buildLog` subscriptions.

Strawberry runs every subscription event through GraphQL execution: for one log line
watched by 200 people that is 200 executions, and on a busy build it was most of the line
latency. A `buildLog` subscription that selects only plain fields of LogLine (number,
text, __typename, aliases allowed) has a result whose shape the document alone decides.
Such a document is parsed and validated once (`log_plan`, cached), and each line's `next`
message is written straight from the log.

Anything else (fragments, directives, other operations, invalid variables, and every error
before the first line) goes through Strawberry unchanged: the direct path only starts once
the caller is authenticated and may see the version. Both paths write the same bytes:
tests/e2e/test_log_stream.py compares them, tests/graphql/test_log_plan.py the choice.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any, cast

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableDefinitionNode,
    get_argument_values,
    get_named_type,
    get_variable_values,
    parse,
    validate,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    CompleteMessage,
    NextMessage,
    NextMessagePayload,
)

from app.domain.errors import Unauthenticated
from app.graphql.context import Context
from app.graphql.errors import coded, stream_failure
from app.graphql.transport import WebSocketAdapter
from app.graphql.ws_protocol import SHARED_LINES
from app.logbus import Sink
from app.services import logs

LOG_FIELDS = {"number", "text", "__typename"}
# Bounds that keep a planned document far inside the schema's depth, token and alias
# limits (which Strawberry checks on the other path): 2 levels, < 4000 tokens, <= 9 aliases.
MAX_QUERY_LENGTH = 4000
MAX_SELECTIONS = 8
# The most a replay writes at once (app/graphql/ws_protocol.py), in characters of messages.
WRITE_BYTES = 256 * 1024
# The most lines the log bus's sink writes at once (a Redis reader catching up hands more):
# the task that adds them writes to every connection before anything else runs, frames
# shared by the connections (app/graphql/ws_protocol.py).
SINK_LINES = SHARED_LINES


@dataclass(frozen=True, slots=True)
class LogPlan:
    """What a plain buildLog document asks for, known before any line is read."""

    response_key: str
    field: GraphQLField
    node: FieldNode
    variable_definitions: tuple[VariableDefinitionNode, ...]
    selections: tuple[tuple[str, str], ...]  # (response key, LogLine field), in result order
    typename: str
    cache: dict[str, Callable[[int, str], str]] = dataclasses.field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def version_id(self, schema: GraphQLSchema, variables: dict[str, Any] | None) -> str | None:
        """The coerced versionId argument; None when the variables do not coerce."""
        coerced = get_variable_values(schema, self.variable_definitions, variables or {})
        if isinstance(coerced, list):
            return None
        try:
            arguments = get_argument_values(self.field, self.node, coerced)
        except GraphQLError:
            return None
        value = arguments.get("versionId")
        return value if isinstance(value, str) else None

    def data(self, number: int, text: str) -> dict[str, Any]:
        values = {"number": number, "text": text, "__typename": self.typename}
        return {self.response_key: {key: values[name] for key, name in self.selections}}

    def frames(self, operation_id: str) -> Callable[[int, str], str]:
        """Each line's whole `next` message as Strawberry encodes it (json.dumps, compact
        separators, ASCII), put together from pieces encoded once: a late joiner replays
        100,000 lines, each of them a message. Subscribers of the same document and
        operation id share the function and the messages of recent lines: a line watched
        by 500 people is encoded once."""
        shared = self.cache.get(operation_id)
        if shared is None:
            if len(self.cache) > 64:
                self.cache.clear()
            shared = self.cache[operation_id] = self._frames(operation_id)
        return shared

    def _frames(self, operation_id: str) -> Callable[[int, str], str]:
        head = (
            '{"id":' + json.dumps(operation_id) + ',"type":"next","payload":{"data":{'
            + json.dumps(self.response_key) + ":{"
        )  # fmt: skip
        typename = json.dumps(self.typename)
        pieces = [
            ("," if i else "") + json.dumps(key) + ":" for i, (key, _) in enumerate(self.selections)
        ]
        names = [name for _, name in self.selections]
        encode = encode_basestring_ascii

        recent: dict[int, tuple[str, str]] = {}  # number -> (text, message)

        def frame(number: int, text: str) -> str:
            found = recent.get(number)
            if found is not None and found[0] is text:  # the same line (of the same log)
                return found[1]
            if len(recent) > 4096:
                recent.clear()
            out = [head]
            for piece, name in zip(pieces, names, strict=True):
                out.append(piece)
                if name == "number":
                    out.append(str(number))
                elif name == "text":
                    out.append(encode(text))
                else:
                    out.append(typename)
            out.append("}}}}")
            message = "".join(out)
            recent[number] = (text, message)
            return message

        return frame


def log_plan(schema: GraphQLSchema, query: str, operation_name: str | None) -> LogPlan | None:
    """A plan when the document is one valid, plain buildLog subscription; else None."""
    if len(query) > MAX_QUERY_LENGTH:
        return None
    return _log_plan(schema, query, operation_name)


@functools.lru_cache(maxsize=256)
def _log_plan(schema: GraphQLSchema, query: str, operation_name: str | None) -> LogPlan | None:
    try:
        document = parse(query)
    except GraphQLError:
        return None
    if len(document.definitions) != 1 or validate(schema, document):
        return None
    operation = document.definitions[0]
    if not isinstance(operation, OperationDefinitionNode):
        return None
    if operation.operation != OperationType.SUBSCRIPTION or operation.directives:
        return None
    if operation_name is not None and (
        operation.name is None or operation.name.value != operation_name
    ):
        return None
    if len(operation.selection_set.selections) != 1:
        return None
    root = operation.selection_set.selections[0]
    if not isinstance(root, FieldNode) or root.name.value != "buildLog" or root.directives:
        return None
    if root.selection_set is None or len(root.selection_set.selections) > MAX_SELECTIONS:
        return None
    selections: dict[str, str] = {}
    for selection in root.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        name = selection.name.value
        if name not in LOG_FIELDS:
            return None
        # Validation guarantees that a repeated response key names the same field; the
        # result holds it once, where it first appears.
        selections.setdefault(selection.alias.value if selection.alias else name, name)
    subscription = schema.subscription_type
    assert subscription is not None
    field = subscription.fields["buildLog"]
    return LogPlan(
        response_key=root.alias.value if root.alias else "buildLog",
        field=field,
        node=root,
        variable_definitions=tuple(operation.variable_definitions or ()),
        selections=tuple(selections.items()),
        typename=get_named_type(field.type).name,
    )


class LogStreamHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        opened = await self._open_log(operation)
        if opened is None:
            await super().run_operation(operation)
            return
        plan, lines = opened
        try:
            async with aclosing(lines):
                await self._send_lines(operation, plan, lines)
            await operation.send_operation_message(
                CompleteMessage(id=operation.id, type="complete")
            )
        except Exception as error:
            # As Strawberry does when sending fails: log, try to complete, forget the id.
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message(
                    CompleteMessage(id=operation.id, type="complete")
                )
            self.operations.pop(operation.id, None)
            raise

    async def _open_log(
        self, operation: Operation[Context, None]
    ) -> tuple[LogPlan, AsyncGenerator[list[tuple[int, str]], None]] | None:
        """The plan and the open log, or None to let Strawberry run (and word any error)."""
        query, name, variables = operation.query, operation.operation_name, operation.variables
        if not isinstance(query, str) or not isinstance(name, str | None):
            return None
        if not isinstance(variables, dict | None):
            return None
        schema: GraphQLSchema = self.schema._schema  # type: ignore[attr-defined]
        plan = log_plan(schema, query, name)
        if plan is None:
            return None
        version_id = plan.version_id(schema, variables)
        if version_id is None:
            return None
        try:
            user = await self.context.user()
            sink = self._sink(operation, plan)
            lines = await logs.follow_log_batches(self.context.runtime, user, version_id, sink)
        except Exception:  # a refusal, or a failure: Strawberry words and codes it
            return None
        return plan, lines

    def _sink(self, operation: Operation[Context, None], plan: LogPlan) -> Sink | None:
        """Where the log bus writes live lines to this connection as they come, in the task
        that adds them (app/logbus Sink): a line followed by 500 connections of a process is
        500 writes, not 500 tasks woken to write it. It refuses (and `_send_lines` sends
        them) when the connection would make it wait (a slow reader), the operation is
        over (or the client completed it), the token is not known valid as of recently
        enough, or the lines are many (SINK_LINES) or long (WRITE_BYTES)."""
        adapter = cast(WebSocketAdapter, self.websocket)
        write_now = adapter.writer
        if write_now is None:
            return None
        frame, context = plan.frames(operation.id), self.context

        def sink(start: int, texts: list[str]) -> bool:
            if (
                operation.completed
                or self.operations.get(operation.id) is not operation  # completed by the client
                or not context.verified()
                or (
                    len(texts) > 1
                    and (len(texts) > SINK_LINES or sum(map(len, texts)) > WRITE_BYTES)
                )
            ):
                return False
            return write_now([frame(start + i, text) for i, text in enumerate(texts)])

        return sink

    async def _send_lines(
        self,
        operation: Operation[Context, None],
        plan: LogPlan,
        lines: AsyncGenerator[list[tuple[int, str]], None],
    ) -> None:
        frame = plan.frames(operation.id)
        adapter = cast(WebSocketAdapter, self.websocket)  # the view's adapter class
        send, write_now = adapter.send_text, adapter.writer
        while True:
            try:
                batch = await anext(lines)
                await self.context.user()  # still this token's? (checked again now and then)
            except StopAsyncIteration:
                return
            except Unauthenticated as refused:
                error = coded(GraphQLError(str(refused), original_error=refused))
                payload = NextMessagePayload(data=None, errors=[error.formatted])
                await operation.send_operation_message(
                    NextMessage(id=operation.id, type="next", payload=payload)
                )
                return
            except Exception as exc:
                # What the resolver in schema.py raises and Strawberry sends for a stream
                # that fails mid-way: one `next` with the error, then `complete`.
                failure = stream_failure(exc)
                error = coded(GraphQLError(str(failure), original_error=failure))
                payload = NextMessagePayload(data=None, errors=[error.formatted])
                await operation.send_operation_message(
                    NextMessage(id=operation.id, type="next", payload=payload)
                )
                return
            if write_now is not None:
                # at most about WRITE_BYTES a write, so that a slow reader's backpressure
                # still holds the sending back
                frames: list[str] = []
                size, last = 0, len(batch) - 1
                for i, (number, text) in enumerate(batch):
                    frames.append(frame(number, text))
                    size += len(frames[-1])
                    if size >= WRITE_BYTES or i == last:
                        if operation.completed:  # as send_operation_message: nothing after
                            return
                        if not write_now(frames):
                            await adapter.send_many(frames)
                        frames, size = [], 0
                continue
            for number, text in batch:
                if operation.completed:
                    return
                await send(frame(number, text))
