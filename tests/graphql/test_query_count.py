"""SQL statements per GraphQL response, counted at the database connection: a page of
searchEnvironments costs the same number of queries whatever its size, with every per-row
field a dashboard selects (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from app.graphql.context import Context
from app.graphql.schema import schema
from app.services import policies
from app.services.runtime import Runtime
from app.services.users import add_user
from tests.support.population import populate
from tests.support.runtime import api_runtime
from tests.support.statements import counting

DASHBOARD = """query($f: EnvironmentFilter, $n: Int!, $after: String) {
  searchEnvironments(filter: $f, first: $n, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id shortName fullName status publishedAt reviewFeedback
      creator { username isAdmin }
      usage { activations users lastActivatedAt }
      events { kind at actor { username } versionNumber note }
      latestVersion { number status }
      publishedVersion { number packages { name version manager } }
      versions { number status policyViolations { name version rule } }
    } }
  }
}"""


async def _run(rt: Runtime, user: Any, **variables: Any) -> dict[str, Any]:
    result = await schema.execute(
        DASHBOARD,
        variable_values=variables,
        context_value=Context(runtime=rt, request=None, _user=user),  # type: ignore[arg-type]
    )
    assert result.errors is None, result.errors
    data: dict[str, Any] = result.data["searchEnvironments"]  # type: ignore[index]
    return data


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_search_page_costs_the_same_whatever_its_size(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path) as rt:
        admin, _ = await add_user("acme", "carol", admin=True)
        alice, _ = await add_user("acme", "alice", admin=False)
        bob, _ = await add_user("acme", "bob", admin=False)
        await populate([alice, bob], 150, published=120, packages=20)
        await policies.set_policy(admin, ["lib-000", "lib-001>=1.1"])

        cost: dict[tuple[str, int], int] = {}
        for who, user in (("admin", admin), ("member", alice)):
            for size in (1, 10, 100):
                with counting(monkeypatch) as sent:
                    page = await _run(rt, user, n=size)
                assert len(page["edges"]) == size
                assert page["pageInfo"]["hasNextPage"]
                # Every per-row field was resolved, not left empty.
                nodes = [e["node"] for e in page["edges"]]
                assert all(n["events"] and n["versions"] and n["creator"] for n in nodes)
                assert any(n["usage"]["activations"] for n in nodes) or size == 1
                assert any(v["policyViolations"] for n in nodes for v in n["versions"]) or (
                    size == 1
                )
                assert set(sent) <= {"execute_query", "execute_query_dict"}  # reads only
                cost[(who, size)] = sum(sent.values())
                # The next page, filtered, costs the same again.
                with counting(monkeypatch) as sent:
                    after = await _run(
                        rt,
                        user,
                        n=size,
                        after=page["pageInfo"]["endCursor"],
                        f={"status": ["PUBLISHED"], "containsPackage": "lib-002"},
                    )
                assert after["edges"]
                assert sum(sent.values()) == cost[(who, size)], (who, size, sent)
            assert cost[(who, 1)] == cost[(who, 10)] == cost[(who, 100)], cost
        # count, page, creators, versions, published packages, usage, events, event
        # actors, policies, package lists for the violations
        assert cost[("admin", 100)] <= 10, cost
