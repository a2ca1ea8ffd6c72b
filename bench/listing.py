"""Listings at size, through a real `envyard serve` over HTTP, on SQLite and PostgreSQL.

Run: .venv/bin/python bench/listing.py   (prints figures; asserts nothing)

The database holds two organizations written straight into it (tests/support/population.py):
"big" with 10,000 environments and "kilo" with 1,000, each environment with 3 versions of
30 installed packages, all published (so that each admin sees every one of them). Timed,
as each organization's admin, from sending a request to the last byte of its response (the
client's JSON decoding left out), medians of BENCH_ROUNDS:
- `environments` unpaged in "kilo": 1,000 environments with every version's number, status
  and packages (name, version, manager); the server's peak RSS (VmHWM) after it;
- a page of 50 environments in "big" with the same fields, by `environments(first: 50)` and
  by `searchEnvironments(first: 50)`, first and later pages;
- the same page with only the environments' own fields (no versions).
Baselines, same run, same database: the raw SQL fetch of the same rows (environments, then
their versions with the package lists, JSON decoded) with the database driver in this
process, for the 1,000 and for one page of 50.
BENCH_ROUNDS sets the timed rounds (default 7), BENCH_BACKENDS which databases (default
"sqlite postgres").
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

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise import connections  # noqa: E402
from tortoise.backends.base.executor import EXECUTOR_CACHE  # noqa: E402

from app.services.runtime import database  # noqa: E402
from app.services.users import add_user  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import print_backends  # noqa: E402
from tests.support.population import populate  # noqa: E402
from tests.support.server import base_env, database_url, run_server  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite postgres").split()

FIELDS = """id shortName fullName status createdAt creator { username }
  versions { number status packages { name version manager } }"""
LISTING = f"{{ environments {{ {FIELDS} }} }}"
PAGE = f"""query($after: ID) {{ environments(first: 50, after: $after) {{ {FIELDS} }} }}"""
SEARCH = f"""query($after: String) {{ searchEnvironments(first: 50, after: $after) {{
  pageInfo {{ endCursor }} edges {{ cursor node {{ {FIELDS} }} }} }} }}"""
OWN = "{ environments(first: 50) { id shortName fullName status createdAt } }"


def sql(query: str, backend: str) -> str:
    """`?` placeholders in PostgreSQL's numbered form there."""
    if backend != "postgres":
        return query
    parts = query.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


async def raw_fetch(backend: str, org_id: int, limit: int | None) -> list[dict[str, Any]]:
    """The rows the listing shows, by hand: environments with their creators' names, then
    their versions with the package lists, decoded; grouped under each environment."""
    db = connections.get("default")
    envs = await db.execute_query_dict(
        sql(
            "SELECT e.id, e.short_name, e.full_name, e.status, e.created_at, u.username "
            'FROM environment e JOIN "user" u ON u.id = e.creator_id '
            "WHERE e.organization_id = ? ORDER BY e.short_name, e.id"
            + (f" LIMIT {limit}" if limit else ""),
            backend,
        ),
        [org_id],
    )
    ids = [e["id"] for e in envs]
    marks = ", ".join("?" for _ in ids)
    versions = await db.execute_query_dict(
        sql(
            "SELECT environment_id, number, status, packages FROM version "
            f"WHERE environment_id IN ({marks}) ORDER BY environment_id, number",
            backend,
        ),
        ids,
    )
    by_env: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    for v in versions:
        packages = v["packages"]
        v["packages"] = json.loads(packages) if isinstance(packages, str) else packages
        by_env[v["environment_id"]].append(v)
    for e in envs:
        e["versions"] = by_env[e["id"]]
    return envs


async def median(action: Callable[[], Awaitable[Any]], rounds: int = ROUNDS) -> float:
    """The median time of `action`: its own measure when it returns one (a float: a
    request's time without the client's decoding), else its whole time."""
    await action()  # warm-up: caches, prepared statements
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        measured = await action()
        took = time.perf_counter() - started
        times.append(measured if isinstance(measured, float) else took)
    return statistics.median(times)


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Caller:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.http = httpx.AsyncClient(timeout=600)

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        return (await self.request(query, variables))[1]

    async def timed(self, query: str, **variables: Any) -> float:
        """The time from sending the request to the last byte of the response (decoding
        the JSON is the client's work: 10 ms of httpx for a 50-environment page)."""
        return (await self.request(query, variables))[0]

    async def request(self, query: str, variables: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        response = await self.http.post(
            self.url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        took = time.perf_counter() - started
        body: dict[str, Any] = json.loads(response.content)
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return took, data


async def populate_database(settings: Settings) -> dict[str, Any]:
    async with database(settings):
        big_admin, big_token = await add_user("big", "bigadmin", admin=True)
        big_members = [(await add_user("big", f"b{i}", admin=False))[0] for i in range(4)]
        kilo_admin, kilo_token = await add_user("kilo", "kiloadmin", admin=True)
        kilo_members = [(await add_user("kilo", f"k{i}", admin=False))[0] for i in range(4)]
        started = time.perf_counter()
        await populate(big_members, 10_000, published=10_000, packages=30, versions=3, prefix="b")
        await populate(kilo_members, 1_000, published=1_000, packages=30, versions=3, prefix="k")
        return {
            "made": time.perf_counter() - started,
            "big": (big_admin.organization_id, big_token),
            "kilo": (kilo_admin.organization_id, kilo_token),
        }


async def run_backend(backend: str, data_dir: Path) -> list[str]:
    lines: list[str] = []
    for url in database_url(backend, data_dir):
        lines += await measure(backend, url, data_dir)
    return lines


async def measure(backend: str, url: str, data_dir: Path) -> list[str]:
    EXECUTOR_CACHE.clear()
    settings = Settings.from_env(
        {"ENVYARD_DATA_DIR": str(data_dir / "data"), "ENVYARD_DATABASE_URL": url}
    )
    made = await populate_database(settings)
    (big_org, big_token), (kilo_org, kilo_token) = made["big"], made["kilo"]
    lines = [f"{backend}: 11,000 environments written in {made['made']:.1f} s"]

    async with database(settings):
        base_all = await median(partial(raw_fetch, backend, kilo_org, None))
        base_page = await median(partial(raw_fetch, backend, big_org, 50), ROUNDS * 3)

    env = base_env(data_dir / "data", url, "http://127.0.0.1:9/simple")
    with run_server(env) as server:
        kilo = Caller(server.http_url, kilo_token)
        big = Caller(server.http_url, big_token)
        rss_start, _ = peak_rss_mb(server.process.pid)
        found = await kilo(LISTING)
        assert len(found["environments"]) == 1_000
        assert sum(len(v["packages"]) for v in found["environments"][0]["versions"]) == 90
        listing = await median(partial(kilo.timed, LISTING))
        _, rss_peak = peak_rss_mb(server.process.pid)
        lines.append(
            f"{backend:8} environments, 1,000 unpaged, 3 versions x 30 packages: "
            f"{listing * 1000:7.1f} ms   raw SQL fetch {base_all * 1000:6.1f} ms   "
            f"x{listing / base_all:.1f}   server RSS {rss_start:.0f} MB at start, "
            f"peak {rss_peak:.0f} MB"
        )
        # Cursors 2,050 environments in: page 42 of each listing.
        after, cursor = None, None
        for _ in range(41):
            page = await big(PAGE, after=after)
            after = page["environments"][-1]["id"]
            found = await big(SEARCH, after=cursor)
            cursor = found["searchEnvironments"]["pageInfo"]["endCursor"]
        pages: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("environments(first: 50), first page", partial(big.timed, PAGE)),
            ("environments(first: 50), page 42", partial(big.timed, PAGE, after=after)),
            ("searchEnvironments(first: 50), first page", partial(big.timed, SEARCH)),
            ("searchEnvironments(first: 50), page 42", partial(big.timed, SEARCH, after=cursor)),
            ("environments(first: 50), own fields only", partial(big.timed, OWN)),
        ]
        for label, action in pages:
            took = await median(action, ROUNDS * 3)
            lines.append(
                f"{backend:8} 10,000 in the database, {label:42} {took * 1000:6.1f} ms"
                f"   x{took / base_page:.1f} raw SQL ({base_page * 1000:.1f} ms)"
            )
        await kilo.http.aclose()
        await big.http.aclose()
    return lines


async def main() -> None:
    await print_backends(
        f"listings through envyard serve over HTTP, medians of {ROUNDS} rounds (pages x3)",
        BACKENDS,
        run_backend,
    )


if __name__ == "__main__":
    asyncio.run(main())
