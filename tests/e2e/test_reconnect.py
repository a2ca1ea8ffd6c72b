"""PostgreSQL ends the connections of a process (a restart, a failover, pg_terminate_backend).

Requests in flight that only read, and every request after the drop, succeed: the dead
connections are replaced. The same holds for the ORM used outside the API (workers, CLI).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from app.db.models import Organization
from app.services.runtime import database
from app.settings import Settings
from tests.support.client import Client
from tests.support.ops import BUILD, create, wait_built
from tests.support.server import POSTGRES_ADMIN_URL, base_env, postgres_database, run_server

pytestmark = pytest.mark.e2e

ME = "{ me { username } }"
# Several statements per request: the token's user, then the environments.
READS = "{ me { username } environments { id shortName } }"


async def terminate_connections(url: str) -> int:
    """pg_terminate_backend on every connection to the database of `url`; how many."""
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        count: int = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.rsplit("/", 1)[1],
        )
        return count
    finally:
        await conn.close()


async def test_api_requests_succeed_when_postgres_drops_the_connections(tmp_path, index_url):
    with postgres_database() as url, run_server(base_env(tmp_path, url, index_url)) as server:
        client = Client(server.http_url, server.ws_url, server.add_user("acme", "alice"))
        try:
            await asyncio.gather(*[client(READS) for _ in range(20)])  # several pool connections
            for _ in range(2):
                # The connections drop while 20 requests are reading: each of them succeeds.
                burst = [asyncio.ensure_future(client(READS)) for _ in range(20)]
                await asyncio.sleep(0.01)
                assert await terminate_connections(url) > 0
                await asyncio.gather(*burst)

                # The connections drop between requests: the next ones succeed.
                assert await terminate_connections(url) > 0
                assert (await client(ME))["me"] == {"username": "alice"}
                env = await create(client)
                assert env["status"] == "SAVED"
                await client(BUILD, id=env["id"])  # a transaction
                assert (await wait_built(client, env["id"]))["status"] == "DRAFT"
                assert await terminate_connections(url) > 0
                results = await asyncio.gather(*[client(READS) for _ in range(20)])
                assert all(r["me"] == {"username": "alice"} for r in results)
        finally:
            await client.aclose()
        output = "".join(server.output)
        assert "Traceback" not in output, output
        assert "internal error" not in output


async def test_orm_outside_the_api_reconnects(tmp_path):
    with postgres_database() as url:
        settings = Settings.from_env(
            {"ENVYARD_DATA_DIR": str(tmp_path), "ENVYARD_DATABASE_URL": url}
        )
        async with database(settings):
            await Organization.create(name="acme")
            assert await Organization.filter(name="acme").count() == 1
            for name in ("globex", "initech"):
                assert await terminate_connections(url) > 0
                assert await Organization.filter(name="acme").count() == 1
                assert await terminate_connections(url) > 0
                await Organization.create(name=name)  # a write first: the dead one is noticed
                assert await terminate_connections(url) > 0
                async with in_transaction():
                    await Organization.filter(name=name).update(name=name.upper())
            names = await Organization.all().order_by("id").values_list("name", flat=True)
            assert names == ["acme", "GLOBEX", "INITECH"]
