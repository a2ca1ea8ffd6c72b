"""The shortcut for lists of flat objects (app/graphql/execution.py) against graphql-core's
own execution: the same data and the same errors, on a schema made to hit every case where
it must give the list back, and on envyard's schema with a populated database."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import pytest
import strawberry

from app.graphql import execution
from app.graphql.context import Context
from app.graphql.execution import FastListsContext, ListingsContext
from app.graphql.schema import Mutation, Query, Subscription, schema
from app.services.users import add_user
from tests.support.population import populate
from tests.support.runtime import api_runtime


@pytest.fixture
def shortcuts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many lists the shortcut completed (so that a comparison proves something)."""
    done: list[int] = []
    original = execution._complete_flat

    def counted(plan: Any, items: Any) -> list[Any]:
        completed = original(plan, items)
        done.append(len(completed))
        return completed

    monkeypatch.setattr(execution, "_complete_flat", counted)
    return done


# -- a schema for the edge cases -------------------------------------------------------------


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Flat:
    name: str
    size: int
    colour: Colour
    note: str | None

    @strawberry.field
    def shout(self) -> str:  # a resolver of its own: not a basic field
        return self.name.upper()


@strawberry.type
class Box:
    label: str
    inner: Flat


@strawberry.type
class Other:
    name: str


Thing = Annotated[Flat | Other, strawberry.union("Thing")]

GOOD = [Flat(name=f"n{i}", size=i, colour=Colour.RED, note=None) for i in range(5)]


@strawberry.type
class EdgeQuery:
    @strawberry.field
    def flats(self) -> list[Flat]:
        return GOOD

    @strawberry.field
    def maybe_flats(self) -> list[Flat | None]:
        return [GOOD[0], None, GOOD[1]]

    @strawberry.field
    def null_in_non_null_items(self) -> list[Flat]:
        return [GOOD[0], None]  # type: ignore[list-item]

    @strawberry.field
    def null_name(self) -> list[Flat]:
        return [GOOD[0], Flat(name=None, size=1, colour=Colour.RED, note="x")]  # type: ignore[arg-type]

    @strawberry.field
    def bad_size(self) -> list[Flat]:
        return [GOOD[0], Flat(name="x", size="many", colour=Colour.BLUE, note=None)]  # type: ignore[arg-type]

    @strawberry.field
    def huge_size(self) -> list[Flat]:
        return [Flat(name="x", size=2**40, colour=Colour.BLUE, note=None)]

    @strawberry.field
    def bad_colour(self) -> list[Flat]:
        return [Flat(name="x", size=1, colour="green", note=None)]  # type: ignore[arg-type]

    @strawberry.field
    def boxes(self) -> list[Box]:
        return [Box(label="b", inner=GOOD[0])]

    @strawberry.field
    def things(self) -> list[Thing]:
        return [GOOD[0], Other(name="o")]

    @strawberry.field
    def empty(self) -> list[Flat]:
        return []

    @strawberry.field
    async def later(self) -> list[Flat]:
        return GOOD[:2]


plain_edges = strawberry.Schema(query=EdgeQuery)
fast_edges = strawberry.Schema(query=EdgeQuery, execution_context_class=FastListsContext)

EDGE_QUERIES = [
    "{ flats { name size colour note } }",
    "{ flats { __typename n: name s: size name } }",
    "{ flats { ...F } } fragment F on Flat { name colour }",
    "{ flats { ... on Flat { size } name } }",
    "query($skip: Boolean!) { flats { name size @skip(if: $skip) colour @include(if: $skip) } }",
    "{ maybeFlats { name } }",
    "{ nullInNonNullItems { name } }",
    "{ nullName { name note } }",
    "{ nullName { size } }",
    "{ badSize { name size } }",
    "{ hugeSize { size } }",
    "{ badColour { colour } }",
    "{ flats { name shout } }",
    "{ boxes { label inner { name } } }",
    "{ things { ... on Flat { name } ... on Other { name } } }",
    "{ empty { name } }",
    "{ later { name size } }",
]
# Where the shortcut must complete the list itself, and where it must give it back.
TAKEN = {0, 1, 2, 3, 4, 5, 8, 16}  # 8: the null is in a field it does not select


@pytest.mark.parametrize("index", range(len(EDGE_QUERIES)))
async def test_the_same_as_graphql_core_on_every_edge(index, shortcuts):
    query = EDGE_QUERIES[index]
    variables = {"skip": True}
    plain = await plain_edges.execute(query, variable_values=variables)
    taken_before = len(shortcuts)
    fast = await fast_edges.execute(query, variable_values=variables)
    assert fast.data == plain.data
    assert [(e.message, e.path) for e in fast.errors or []] == [
        (e.message, e.path) for e in plain.errors or []
    ]
    assert (len(shortcuts) > taken_before) == (index in TAKEN), shortcuts


# -- envyard's schema ------------------------------------------------------------------------

# graphql-core's completion everywhere (a listing's query becomes its objects)
plain_envyard = type(schema)(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=ListingsContext,
)

LISTINGS = [
    """{ environments { id shortName status creator { username }
        versions { number status packages { name version manager } } } }""",
    """{ environments(first: 7) { latestVersion { packages { __typename manager name } }
        publishedVersion { packages { v: version } } events { kind versionNumber note } } }""",
    """{ searchEnvironments(first: 20) { edges { cursor node { shortName
        versions(first: 2) { policyViolations { name manager version rule }
        packages { name } } } } } }""",
]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_the_same_as_graphql_core_on_listings(backend, tmp_path, shortcuts):
    async with api_runtime(backend, tmp_path) as rt:
        admin, _ = await add_user("acme", "carol", admin=True)
        alice, _ = await add_user("acme", "alice", admin=False)
        await populate([alice, admin], 40, published=25, packages=12, versions=3)
        from app.services import policies

        await policies.set_policy(admin, ["lib-000", "lib-001>=1.1"])
        for query in LISTINGS:
            for user in (admin, alice):
                results = []
                for which in (plain_envyard, schema):
                    context = Context(runtime=rt, request=None, _user=user)  # type: ignore[arg-type]
                    results.append(await which.execute(query, context_value=context))
                plain, fast = results
                assert plain.errors is None and fast.errors is None, (plain.errors, fast.errors)
                assert fast.data == plain.data
        assert sum(shortcuts) > 1000  # the packages, events and violations were shortcut
