"""Which buildLog documents take the direct path, and what the plan reads from them.

The frames each path sends are compared against a running server in
tests/e2e/test_log_stream.py; here, without one, the choice itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLError, GraphQLSchema

from app.graphql.errors import coded, stream_failure
from app.graphql.log_stream import MAX_QUERY_LENGTH, log_plan
from app.graphql.schema import schema

GRAPHQL: GraphQLSchema = schema._schema

PLAIN = "subscription($v: ID!) { buildLog(versionId: $v) { number text } }"

PLANNED = [
    # (document, operation name, response key, selections)
    (PLAIN, None, "buildLog", [("number", "number"), ("text", "text")]),
    (
        "subscription Watch($v: ID!) { log: buildLog(versionId: $v) { n: number __typename } }",
        "Watch",
        "log",
        [("n", "number"), ("__typename", "__typename")],
    ),
    (
        "subscription Watch($v: ID!) { buildLog(versionId: $v) { text } }",
        None,  # one operation: no name needed
        "buildLog",
        [("text", "text")],
    ),
    (
        # a repeated key is one result field, where it first appears
        "subscription { buildLog(versionId: 7) { text number text } }",
        None,
        "buildLog",
        [("text", "text"), ("number", "number")],
    ),
]

NOT_PLANNED = [
    ("subscription($v: ID!) { buildLog(versionId: $v) { number @include(if: true) } }", None),
    ("subscription($v: ID!) @deprecated { buildLog(versionId: $v) { number } }", None),
    ("subscription($v: ID!) { buildLog(versionId: $v) @skip(if: false) { number } }", None),
    (
        "subscription($v: ID!) { buildLog(versionId: $v) { ...L } } fragment L on LogLine { text }",
        None,
    ),
    ("subscription($v: ID!) { buildLog(versionId: $v) { ... on LogLine { text } } }", None),
    ("subscription($v: ID!) { ... on Subscription { buildLog(versionId: $v) { text } } }", None),
    ("subscription Watch($v: ID!) { buildLog(versionId: $v) { text } }", "Other"),
    ("subscription($v: ID!) { buildLog(versionId: $v) { text } }", "Watch"),
    ("subscription($v: ID!) { buildLog(versionId: $v) { text } } query { me { id } }", None),
    ("query { me { id } }", None),
    ("subscription($v: ID!) { buildLog(versionId: $v) { text", None),  # syntax
    ("subscription($v: ID!) { buildLog(versionId: $v) { text secret } }", None),  # invalid
    ("subscription { buildLog { text } }", None),  # missing argument
    ("subscription($v: Int!) { buildLog(versionId: $v) { text } }", None),  # wrong type
    ("subscription($v: ID!) { buildLog(versionId: $v) }", None),  # no selection
    (
        "subscription($v: ID!) { buildLog(versionId: $v) { "
        + " ".join(f"a{i}: text" for i in range(9))
        + " } }",
        None,
    ),
    ("subscription($v: ID!) { buildLog(versionId: $v) { text } }" + " " * MAX_QUERY_LENGTH, None),
]


@pytest.mark.parametrize(("query", "name", "key", "selections"), PLANNED)
def test_plain_documents_are_planned(
    query: str, name: str | None, key: str, selections: list[tuple[str, str]]
) -> None:
    plan = log_plan(GRAPHQL, query, name)
    assert plan is not None
    assert plan.response_key == key
    assert list(plan.selections) == selections


@pytest.mark.parametrize(("query", "name"), NOT_PLANNED)
def test_other_documents_go_through_strawberry(query: str, name: str | None) -> None:
    assert log_plan(GRAPHQL, query, name) is None


def test_data_has_the_shape_graphql_gives() -> None:
    query = "subscription($v: ID!) { l: buildLog(versionId: $v) { t: text __typename n: number } }"
    plan = log_plan(GRAPHQL, query, None)
    assert plan is not None
    data = plan.data(3, 'say "hi"')
    assert data == {"l": {"t": 'say "hi"', "__typename": "LogLine", "n": 3}}
    assert list(data["l"]) == ["t", "__typename", "n"]


VERSION_IDS: list[tuple[str, dict[str, Any] | None, str | None]] = [
    (PLAIN, {"v": "12"}, "12"),
    (PLAIN, {"v": 12}, "12"),  # ID accepts an integer and gives a string
    (PLAIN, {"v": 1.5}, None),
    (PLAIN, {"v": True}, None),
    (PLAIN, {"v": None}, None),
    (PLAIN, {}, None),
    (PLAIN, None, None),
    ("subscription { buildLog(versionId: 7) { text } }", None, "7"),
    ('subscription { buildLog(versionId: "7") { text } }', {"v": "8"}, "7"),
    ('subscription($v: ID = "9") { buildLog(versionId: $v) { text } }', {}, "9"),
]


@pytest.mark.parametrize(("query", "variables", "expected"), VERSION_IDS)
def test_version_id_is_coerced_as_graphql_does(
    query: str, variables: dict[str, Any] | None, expected: str | None
) -> None:
    plan = log_plan(GRAPHQL, query, None)
    assert plan is not None
    assert plan.version_id(GRAPHQL, variables) == expected


def test_a_stream_that_fails_is_an_internal_error_with_a_masked_message() -> None:
    failure = stream_failure(RuntimeError("connection to the database lost"))
    error = coded(GraphQLError(str(failure), original_error=failure))
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert "database" not in error.message


@pytest.mark.parametrize(
    "text",
    ["plain", 'quotes " and \\ backslashes', "tab\there\r\n", "ünïcödé ✓ 🐍", "\x00\x1f", ""],
)
def test_frames_are_what_strawberry_encodes(text: str) -> None:
    """The direct path's pre-encoded `next` message equals Strawberry's json.dumps of it."""
    import json

    document = (
        "subscription W($v: ID!) { l: buildLog(versionId: $v) { t: text number __typename } }"
    )
    plan = log_plan(GRAPHQL, document, "W")
    assert plan is not None
    for operation_id in ("1", 'odd "id" ✓'):
        message = {"id": operation_id, "type": "next", "payload": {"data": plan.data(7, text)}}
        assert plan.frames(operation_id)(7, text) == json.dumps(message, separators=(",", ":"))
