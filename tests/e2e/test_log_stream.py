"""buildLog's direct path writes exactly the frames Strawberry writes.

PLAIN takes the direct path (app/graphql/log_stream.py); DIRECTED asks for the same data
with an `@include(if: true)`, which sends it through Strawberry's execution. Live, replayed
after the build, and for every refusal, the two must be byte for byte the same.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from app.graphql.log_stream import log_plan
from app.graphql.schema import schema
from tests.support.client import Client
from tests.support.ops import BUILD, create, wait_built

pytestmark = pytest.mark.e2e

FIELDS = "{ n: number text __typename number }"
PLAIN = f"subscription Watch($v: ID!) {{ log: buildLog(versionId: $v) {FIELDS} }}"
DIRECTED = PLAIN.replace("n: number", "n: number @include(if: true)")


def test_the_documents_take_different_paths() -> None:
    assert log_plan(schema._schema, PLAIN, "Watch") is not None
    assert log_plan(schema._schema, DIRECTED, "Watch") is None


async def both(client: Client, **variables: object) -> tuple[list[str], list[str]]:
    plain, directed = await asyncio.gather(
        client.frames(PLAIN, "Watch", **variables), client.frames(DIRECTED, "Watch", **variables)
    )
    return plain, directed


async def test_same_frames_live_and_after_the_build(people):
    alice = people.alice
    env = await create(alice, pipLibraries=["yard-slow", "yard-beta"])
    version = (await alice(BUILD, id=env["id"]))["buildEnvironment"]
    plain, directed = await both(alice, v=version["id"])
    assert plain == directed
    messages = [json.loads(frame) for frame in plain]
    assert messages[-1] == {"id": "1", "type": "complete"}
    lines = [m["payload"]["data"]["log"] for m in messages[:-1]]
    assert [line["n"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(line["number"] == line["n"] and line["__typename"] == "LogLine" for line in lines)

    env = await wait_built(alice, env["id"])
    assert "\n".join(line["text"] for line in lines) == env["versions"][0]["log"]
    # Replayed from the stored log, the same frames again.
    assert await both(alice, v=version["id"]) == (plain, plain)


async def test_same_refusals(people):
    alice, dave = people.alice, people.dave
    env = await create(alice, pipLibraries=["yard-alpha"])
    version = (await alice(BUILD, id=env["id"]))["buildEnvironment"]
    await wait_built(alice, env["id"])
    cases = [
        (dave, {"v": version["id"]}),  # another organization's version
        (alice, {"v": "999999999"}),
        (alice, {"v": "not-a-number"}),
        (alice, {"v": None}),
        (alice, {}),
        (people.anonymous, {"v": version["id"]}),
        (people.forged, {"v": version["id"]}),
    ]
    for client, variables in cases:
        plain, directed = await both(client, **variables)
        assert plain == directed, (variables, plain, directed)
        first = json.loads(plain[0])
        errors = first["payload"] if first["type"] == "error" else first["payload"]["errors"]
        assert errors[0]["extensions"]["code"], plain
