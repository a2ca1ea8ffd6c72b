"""The admin's review tools at size: compareWithPublished of a pending environment against
500 published environments of 100 packages each, and the first page of searchEnvironments
with 10,000 environments in the database, on SQLite and PostgreSQL.

Run: .venv/bin/python bench/governance.py   (prints figures; asserts nothing)

Each operation runs through the GraphQL schema in-process (what a request costs once HTTP
has delivered it), as an admin, with the fields a dashboard selects. Baselines, same run,
same database:
- compare: one hand-written SQL query reading the published versions' package lists, and
  the Jaccard similarity of each computed in plain Python (no change lists, no objects): the
  least work any implementation must do;
- search: a member's first page by hand-written SQL (count, then the page's rows by short
  name, both under the member's visibility rule), and `environments`, the listing clients
  used before search existed, which returns all of them.
The data is written straight into the database (tests/support/population.py).
BENCH_ROUNDS sets the timed rounds (default 15), BENCH_BACKENDS which databases
(default "sqlite postgres").
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import connections  # noqa: E402
from tortoise.backends.base.executor import EXECUTOR_CACHE  # noqa: E402

from app.db.models import Environment, Version  # noqa: E402
from app.domain.statuses import EnvironmentStatus  # noqa: E402
from app.graphql.context import Context  # noqa: E402
from app.graphql.schema import schema  # noqa: E402
from app.services import policies  # noqa: E402
from app.services.runtime import Runtime, database, open_runtime  # noqa: E402
from app.services.users import add_user  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import print_backends  # noqa: E402
from tests.support.population import populate  # noqa: E402
from tests.support.server import database_url  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite postgres").split()

COMPARE = """query($v: ID!) { compareWithPublished(versionId: $v) {
  environment { shortName } version { number } similarity sameVersions
  changes { name manager kind before after } } }"""
NO_CHANGES = COMPARE.replace("changes { name manager kind before after }", "")
COMPARE_FIRST = COMPARE.replace("($v: ID!)", "($v: ID!, $n: Int)").replace(
    "(versionId: $v)", "(versionId: $v, first: $n)"
)
SEARCH = """query($f: EnvironmentFilter) { searchEnvironments(filter: $f, first: 50) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id shortName fullName status creator { username }
    usage { activations lastActivatedAt } latestVersion { number status }
    publishedVersion { number } } } } }"""
LISTING = "{ environments { id shortName fullName status creator { username } } }"


async def median(action: Callable[[], Awaitable[Any]]) -> float:
    for _ in range(2):  # warm-up: caches, prepared statements
        await action()
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def graphql(rt: Runtime, user: Any, query: str, **variables: Any) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        result = await schema.execute(
            query,
            variable_values=variables,
            context_value=Context(runtime=rt, request=None, _user=user),  # type: ignore[arg-type]
        )
        assert result.errors is None, result.errors
        return result.data

    return run


def sql(query: str, backend: str) -> str:
    """`?` placeholders in PostgreSQL's numbered form there."""
    if backend != "postgres":
        return query
    parts = query.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


def _json(value: Any) -> Any:
    """A JSON column as the driver returns it (text here, decoded by some drivers)."""
    return json.loads(value) if isinstance(value, str) else value


async def compare_baseline(backend: str, org_id: int, version_id: int) -> list[float]:
    db = connections.get("default")
    mine = await db.execute_query_dict(
        sql("SELECT packages FROM version WHERE id = ?", backend), [version_id]
    )
    own = {(p["manager"], p["name"]) for p in _json(mine[0]["packages"])}
    rows = await db.execute_query_dict(
        sql(
            "SELECT v.packages FROM version v JOIN environment e ON e.id = v.environment_id "
            "WHERE e.organization_id = ? AND e.status = 'PUBLISHED' "
            "AND v.number = e.published_number",
            backend,
        ),
        [org_id],
    )
    scores = []
    for row in rows:
        theirs = {(p["manager"], p["name"]) for p in _json(row["packages"])}
        scores.append(len(own & theirs) / len(own | theirs))
    return sorted(scores, reverse=True)


async def search_baseline(backend: str, org_id: int, member_id: int) -> list[dict[str, Any]]:
    """What a member's first page needs at the least: the count and the page's own columns
    under the same visibility rule (own or published). It leaves out what the GraphQL page
    also resolves: the creator, the cursor, pageInfo."""
    db = connections.get("default")
    visible = "organization_id = ? AND (creator_id = ? OR published_number IS NOT NULL)"
    await db.execute_query_dict(
        sql(f"SELECT COUNT(*) AS n FROM environment WHERE {visible}", backend), [org_id, member_id]
    )
    rows: list[dict[str, Any]] = await db.execute_query_dict(
        sql(
            "SELECT id, short_name, full_name, status, creator_id FROM environment "
            f"WHERE {visible} ORDER BY short_name, id LIMIT 51",
            backend,
        ),
        [org_id, member_id],
    )
    return rows


async def run_backend(backend: str, data_dir: Path) -> list[str]:
    lines: list[str] = []
    for url in database_url(backend, data_dir):
        EXECUTOR_CACHE.clear()  # executors hold the previous backend's SQL dialect
        settings = Settings.from_env(
            {"ENVYARD_DATA_DIR": str(data_dir / "data"), "ENVYARD_DATABASE_URL": url}
        )
        async with database(settings), open_runtime(settings, "api") as rt:
            # compareWithPublished: 500 published environments of 100 packages, and a draft.
            admin, _ = await add_user("review", "carol", admin=True)
            alice, _ = await add_user("review", "alice", admin=False)
            started = time.perf_counter()
            ids = await populate([alice], 501, published=500, packages=100, prefix="c")
            made = time.perf_counter() - started
            await policies.set_policy(admin, ["lib-000", "lib-001>=1.1"])
            # The last one is pending review.
            await Environment.filter(id=ids[-1]).update(
                status=EnvironmentStatus.PENDING_APPROVAL, submitted_number=1
            )
            draft = await Version.get(environment_id=ids[-1])
            found = await graphql(rt, admin, COMPARE, v=str(draft.id))()
            assert len(found["compareWithPublished"]) == 500
            base = await median(partial(compare_baseline, backend, admin.organization_id, draft.id))
            lines.append(
                f"{backend:8} compareWithPublished, 500 published x 100 packages "
                f"(data written in {made:.1f} s); baseline, one SQL query + Jaccard in Python: "
                f"{base * 1000:.1f} ms"
            )
            for label, query, variables in (
                ("all 500 with their change lists", COMPARE, {}),
                ("all 500 without change lists", NO_CHANGES, {}),
                ("the 20 most similar with change lists", COMPARE_FIRST, {"n": 20}),
            ):
                ours = await median(graphql(rt, admin, query, v=str(draft.id), **variables))
                lines.append(
                    f"{backend:8}   {label:40} {ours * 1000:7.1f} ms   x{ours / base:.1f} baseline"
                )

            # searchEnvironments: 10,000 environments, 2,000 published, 10 packages each.
            admin, _ = await add_user("search", "erin", admin=True)
            members = [(await add_user("search", f"m{i}", admin=False))[0] for i in range(4)]
            started = time.perf_counter()
            await populate(members, 10_000, published=2_000, packages=10, prefix="s", seed=1)
            made = time.perf_counter() - started
            page = await graphql(rt, members[0], SEARCH)()
            assert page["searchEnvironments"]["totalCount"] == 2_000 + 2_000
            for label, who, where in (
                ("first page, member (4,000 visible)", members[0], None),
                ("first page, admin (2,000 visible)", admin, None),
                ("containsPackage lib-007, member", members[0], {"containsPackage": "lib-007"}),
                ("search 'population 99', member", members[0], {"search": "population 99"}),
            ):
                ours = await median(graphql(rt, who, SEARCH, f=where))
                lines.append(f"{backend:8} searchEnvironments {label}: {ours * 1000:7.1f} ms")
            base = await median(
                partial(search_baseline, backend, admin.organization_id, members[0].id)
            )
            listing = await median(graphql(rt, members[0], LISTING))
            lines.append(
                f"{backend:8}   baselines: a member's page by hand-written SQL"
                f" {base * 1000:6.1f} ms;"
                f" `environments` (all 4,000 visible) {listing * 1000:7.1f} ms"
                f"   (data written in {made:.1f} s)"
            )
    return lines


async def main() -> None:
    await print_backends(
        f"admin review tools, in-process GraphQL, medians of {ROUNDS} rounds", BACKENDS, run_backend
    )


if __name__ == "__main__":
    asyncio.run(main())
