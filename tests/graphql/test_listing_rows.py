"""Listings completed from rows (app/graphql/listing.py) against graphql-core completing the
objects: the same data and errors for every field the rows path covers, on SQLite and
PostgreSQL, with nulls, odd versions, aliases, fragments and directives; and the selections
and values it must leave to the general path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import GraphQLObjectType

from app.db.models import Environment, Version
from app.domain.statuses import EnvironmentStatus, VersionStatus
from app.graphql import listing
from app.graphql.context import Context
from app.graphql.execution import ListingsContext
from app.graphql.schema import Mutation, Query, Subscription, schema
from app.services.users import add_user
from tests.support.population import populate
from tests.support.runtime import api_runtime

plain = type(schema)(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=ListingsContext,
)


def basic_fields(type_name: str) -> list[str]:
    """Every field of the type read from an attribute (no resolver, no arguments): the
    rows path must cover each, so a new one is compared here without editing this test."""
    found = schema._schema.type_map[type_name]
    assert isinstance(found, GraphQLObjectType)
    return [
        name
        for name, field in found.fields.items()
        if getattr(field.resolve, "_is_default", False) and not field.args
    ]


ENV = " ".join(basic_fields("Environment"))
VERSION = " ".join(basic_fields("Version"))
USER = " ".join(basic_fields("User"))
PACKAGES = "packages { __typename name version manager }"
EVERYTHING = f"""__typename {ENV} creator {{ __typename {USER} }}
    versions {{ __typename {VERSION} {PACKAGES} }}
    latestVersion {{ number {PACKAGES} }} activeVersion {{ number status }}
    publishedVersion {{ id number }} submittedVersion {{ number createdAt }}"""

# (document, variables, whether the rows path completes it)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    (f"{{ environments {{ {EVERYTHING} }} }}", {}, True),
    (f"{{ environments(first: 7) {{ {EVERYTHING} }} }}", {}, True),
    (f"{{ pendingEnvironments {{ {EVERYTHING} }} }}", {}, True),
    (
        """query($n: Int, $a: Int) { environments { shortName
            versions(first: $n, after: $a) { number } } }""",
        {"n": 1, "a": 1},
        True,
    ),
    (
        """{ environments { n: shortName n2: shortName ...E ... on Environment { id }
            versions { number } versions { status } } }
        fragment E on Environment { fullName s: status v: versions(first: 2) { number } }""",
        {},
        True,
    ),
    (
        """query($yes: Boolean!) { environments { id status @skip(if: $yes)
            fullName @include(if: $yes) creator @skip(if: $yes) { username } } }""",
        {"yes": True},
        True,
    ),
    ("{ environments { id } }", {}, True),
    # nested fields before leaves, in the selection's order
    (
        """{ environments { versions { packages { name } number } creator { username } id
            latestVersion { number } shortName } }""",
        {},
        True,
    ),
    (
        """{ environments { ...A ...B } } fragment A on Environment { versions(first: 2) {
            number } } fragment B on Environment { id versions(first: 2) { status } }""",
        {},
        True,
    ),
    # a connection's edges: cursors, and nodes made from rows
    (
        f"""{{ searchEnvironments(first: 20) {{ totalCount pageInfo {{ endCursor hasNextPage }}
            edges {{ __typename node {{ {EVERYTHING} }} cursor }} }} }}""",
        {},
        True,
    ),
    (
        """query($p: String) { searchEnvironments(filter: {containsPackage: $p}) {
            edges { c: cursor n: node { shortName versions(first: 1) { number } } } } }""",
        {"p": "lib-001"},
        True,
    ),
    ("{ searchEnvironments { edges { cursor } } }", {}, True),
    ("{ searchEnvironments { edges { node { id } other: node { shortName } } } }", {}, False),
    ("{ searchEnvironments { edges { node { id events { kind } } } } }", {}, False),
    # the general path's own fields and refusals
    ("{ environments { id creator { organization } } }", {}, False),
    ("{ environments { id events { kind } } }", {}, False),
    ("{ environments { id usage { activations } baseEnvironment { name } } }", {}, False),
    ("{ environments { id versions(first: 0) { number } } }", {}, False),
    ("{ environments { id versions(after: -1) { number } } }", {}, False),
    ("{ environments { id versions { log } } }", {}, False),
    ("{ environments { id versions { policyViolations { name } } } }", {}, False),
]


@pytest.fixture
def completed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many environments (or edges) the rows path completed, per listing."""
    done: list[int] = []
    for name in ("complete", "complete_edges"):
        original = getattr(listing, name)

        async def counted(made: Any, source: Any, original: Any = original) -> list[Any]:
            found = await original(made, source)
            done.append(len(found))
            return list(found)

        monkeypatch.setattr(listing, name, counted)
    return done


async def compare(rt: Any, user: Any, document: str, variables: dict[str, Any]) -> Any:
    results = []
    for which in (plain, schema):
        context = Context(runtime=rt, request=None, _user=user)  # type: ignore[arg-type]
        results.append(
            await which.execute(document, variable_values=variables, context_value=context)
        )
    general, rows = results
    assert json.dumps(rows.data) == json.dumps(general.data)  # the keys' order too
    assert [(e.message, e.path) for e in rows.errors or []] == [
        (e.message, e.path) for e in general.errors or []
    ]
    return rows


async def odd_population(admin: Any, alice: Any) -> None:
    """Environments of every shape a listing meets."""
    await populate([alice, admin], 12, published=6, packages=5, versions=3)
    envs = await Environment.filter(organization_id=admin.organization_id).order_by("short_name")
    first, second, third, fourth = envs[:4]
    await Environment.filter(id=first.id).update(
        description=None, review_feedback="fix it", conda_libraries=["numpy=1.2", "scipy"]
    )
    await Version.filter(environment_id=second.id, number=3).update(
        status=VersionStatus.FAILED,
        archived=True,
        size_bytes=3 * 2**40,
        reverted_from=1,
        started_at=datetime(2026, 3, 1, 12, 30, 1, 123456, tzinfo=UTC),
        finished_at=None,
    )
    await Environment.filter(id=third.id).update(
        submitted_number=2, status=EnvironmentStatus.PENDING_APPROVAL, submitted_at=None
    )
    await Environment.filter(id=fourth.id).update(published_number=7)  # no such version
    await Version.filter(environment_id=fourth.id, number=1).update(packages=[])
    await Environment.create(
        organization_id=admin.organization_id,
        creator_id=alice.id,
        short_name="zzz",
        full_name="Never built",
        python_version="3.12",
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_rows_complete_listings_as_graphql_core_does(backend, tmp_path, completed):
    async with api_runtime(backend, tmp_path) as rt:
        admin, _ = await add_user("acme", "carol", admin=True)
        alice, _ = await add_user("acme", "alice", admin=False)
        await odd_population(admin, alice)
        for document, variables, by_rows in CASES:
            for user in (admin, alice):
                before = len(completed)
                result = await compare(rt, user, document, variables)
                refused = user is alice and "pendingEnvironments" in document  # admins only
                assert (len(completed) > before) == (by_rows and not refused), document
                assert (result.errors is None) == (by_rows and not refused) or not by_rows
        # the comparisons covered what they claim: versions of every kind, null fields
        listed = []
        for user in (admin, alice):
            result = await compare(rt, user, CASES[0][0], {})
            listed += result.data["environments"]
            assert completed[-1] == len(result.data["environments"])
        assert any(e["shortName"] == "zzz" and e["versions"] == [] for e in listed)
        assert {v["status"] for e in listed for v in e["versions"]} == {"SUCCEEDED", "FAILED"}
        assert any(v["archived"] and v["sizeBytes"] for e in listed for v in e["versions"])
        assert any(e["description"] is None for e in listed)
        published = [e for e in listed if e["status"] == "PUBLISHED"]
        assert any(e["publishedVersion"] is None for e in published)  # number 7: none
        assert any(e["submittedVersion"] and e["submittedVersion"]["number"] == 2 for e in listed)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_values_the_rows_cannot_show_go_the_general_way(backend, tmp_path, completed):
    """A stored value graphql-core would make an error of (a package without a version,
    a library that is not a string): the rows path gives the listing back, and the response
    is the general path's, errors included."""
    async with api_runtime(backend, tmp_path) as rt:
        admin, _ = await add_user("acme", "carol", admin=True)
        await populate([admin], 3, published=3, packages=4, versions=1)
        env = await Environment.filter(organization_id=admin.organization_id).first()
        assert env is not None
        await Version.filter(environment_id=env.id).update(packages=[{"name": "x"}])
        document = f"{{ environments {{ id versions {{ number {PACKAGES} }} }} }}"
        result = await compare(rt, admin, document, {})
        assert result.errors and completed == []
        await Version.filter(environment_id=env.id).update(packages=[])
        await Environment.filter(id=env.id).update(conda_libraries=["ok", 3])
        result = await compare(rt, admin, "{ environments { id condaLibraries } }", {})
        assert completed == []
        result = await compare(rt, admin, "{ environments { id shortName } }", {})
        assert completed == [3]
