"""Listings a page at a time, and work proportional to what the client selected (SQLite and
PostgreSQL): environments, pendingEnvironments, an environment's versions and events, each
paged without repeats or gaps, with bad pages refused; versions, package lists and creators
read only when selected, in one statement each whatever the number of rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.db.models import Environment
from app.domain.statuses import EnvironmentStatus
from app.graphql.context import Context
from app.graphql.schema import schema
from app.services.runtime import Runtime
from app.services.users import add_user
from tests.support.population import populate
from tests.support.runtime import api_runtime
from tests.support.statements import counting


async def _run(rt: Runtime, user: Any, query: str, **variables: Any) -> Any:
    result = await schema.execute(
        query,
        variable_values=variables,
        context_value=Context(runtime=rt, request=None, _user=user),  # type: ignore[arg-type]
    )
    return result


async def _data(rt: Runtime, user: Any, query: str, **variables: Any) -> dict[str, Any]:
    result = await _run(rt, user, query, **variables)
    assert result.errors is None, result.errors
    data: dict[str, Any] = result.data
    return data


async def _refused(rt: Runtime, user: Any, query: str, **variables: Any) -> tuple[str, str]:
    result = await _run(rt, user, query, **variables)
    assert result.errors, result.data
    extensions = result.errors[0].extensions or {}
    return extensions.get("code", ""), extensions.get("field", "")


LIST = "query($n: Int, $a: ID) { environments(first: $n, after: $a) { id shortName } }"
PENDING = "query($n: Int, $a: ID) { pendingEnvironments(first: $n, after: $a) { id } }"


async def _pages(rt: Runtime, user: Any, query: str, field: str, size: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    while True:
        rows = (await _data(rt, user, query, n=size, a=after))[field]
        assert len(rows) <= size
        if not rows:
            return pages
        pages.append([r["id"] for r in rows])
        after = rows[-1]["id"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_listings_page_and_load_what_is_selected(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path) as rt:
        admin, _ = await add_user("acme", "carol", admin=True)
        alice, _ = await add_user("acme", "alice", admin=False)
        bob, _ = await add_user("acme", "bob", admin=False)
        other, _ = await add_user("other", "dave", admin=True)
        ids = await populate([alice, bob], 60, published=20, packages=8, versions=3)
        await populate([other], 3, published=3, packages=2, prefix="o")

        # environments: pages in short-name order, the same rows as the whole list.
        for user in (admin, alice, bob):
            whole = [r["id"] for r in (await _data(rt, user, LIST))["environments"]]
            assert len(whole) == (20 if user is admin else 20 + 20)
            for size in (1, 7, 40, 1000):
                pages = await _pages(rt, user, LIST, "environments", size)
                assert [i for page in pages for i in page] == whole
                assert all(len(p) == size for p in pages[:-1])

        # pendingEnvironments: oldest submission first; the environment a page ends with
        # may leave the queue before the next page is asked for.
        start = datetime(2026, 3, 1, tzinfo=UTC)
        queue = ids[20:32]
        for i, env_id in enumerate(queue):
            await Environment.filter(id=env_id).update(
                status=EnvironmentStatus.PENDING_APPROVAL,
                submitted_number=3,
                submitted_at=start + timedelta(minutes=(i * 7) % 12),  # not in id order
            )
        by_time = sorted(queue, key=lambda i: ((queue.index(i) * 7) % 12, i))
        pages = await _pages(rt, admin, PENDING, "pendingEnvironments", 5)
        assert [int(i) for page in pages for i in page] == by_time
        first = (await _data(rt, admin, PENDING, n=5))["pendingEnvironments"]
        await Environment.filter(id=int(first[-1]["id"])).update(
            status=EnvironmentStatus.PUBLISHED, published_number=3
        )
        after = await _data(rt, admin, PENDING, n=5, a=first[-1]["id"])
        assert [int(r["id"]) for r in after["pendingEnvironments"]] == by_time[5:10]

        # Bad pages are refused, naming the argument.
        dave_env = (await _data(rt, other, LIST, n=1))["environments"][0]["id"]
        for query, variables, field in (
            (LIST, {"n": 0}, "first"),
            (LIST, {"n": 1001}, "first"),
            (LIST, {"a": "x"}, "after"),
            (LIST, {"a": dave_env}, "after"),  # another organization's: never a leak
            (PENDING, {"n": -1}, "first"),
            (PENDING, {"a": str(ids[40])}, "after"),  # never submitted
        ):
            assert await _refused(rt, admin, query, **variables) == ("BAD_USER_INPUT", field)
        assert (await _refused(rt, alice, PENDING))[0] == "FORBIDDEN"

        # An environment's versions and events, a slice at a time.
        one = str(ids[0])
        slices = """query($id: ID!, $n: Int, $v: Int, $e: ID) { environment(id: $id) {
          versions(first: $n, after: $v) { number }
          events(first: $n, after: $e) { id kind } } }"""
        whole_env = (await _data(rt, alice, slices, id=one))["environment"]
        assert [v["number"] for v in whole_env["versions"]] == [1, 2, 3]
        events = whole_env["events"]
        assert len(events) == 6  # created, 3 builds, approved, activated
        sliced = (await _data(rt, alice, slices, id=one, n=2, v=1, e=events[1]["id"]))[
            "environment"
        ]
        assert [v["number"] for v in sliced["versions"]] == [2, 3]
        assert sliced["events"] == events[2:4]
        for variables, field in (
            ({"n": 0}, "first"),
            ({"v": -1}, "after"),
            ({"e": "?"}, "after"),
        ):
            assert await _refused(rt, alice, slices, id=one, **variables) == (
                "BAD_USER_INPUT",
                field,
            )

        # Work proportional to the selection: one statement per kind of row selected,
        # whatever the number of environments; no package lists unless selected.
        selections = {
            "id shortName status": ["environment"],
            "id creator { username }": ["environment", "user"],
            "id versions { number status }": ["environment", "version"],
            "id latestVersion { number } publishedVersion { number }": [
                "environment",
                "version",
            ],
            # Read with the versions: the operation selects them.
            "id versions { packages { name } }": ["environment", "version"],
            "id ...F": ["environment", "version"],
        }
        for fields, tables in selections.items():
            for size in (1, 40):
                with counting(monkeypatch) as sent:
                    await _data(
                        rt,
                        alice,
                        f"{{ environments(first: {size}) {{ {fields} }} }}"
                        + (FRAGMENT if "...F" in fields else ""),
                    )
                assert [_table(t) for t in sent.texts] == tables, (fields, sent.texts)
                read_packages = any("packages" in t for t in sent.texts)
                assert read_packages == ("packages" in fields or "...F" in fields), sent.texts


FRAGMENT = " fragment F on Environment { latestVersion { packages { name } } }"


def _table(sql: str) -> str:
    """The table a SELECT reads first."""
    words = sql.replace('"', "").replace("`", "").split()
    return words[words.index("FROM") + 1]
