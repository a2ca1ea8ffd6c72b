"""A standalone server stopped mid-build: at the next start the build is marked Failed."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.support.client import Client
from tests.support.ops import BUILD, create, get, wait_built
from tests.support.server import base_env, database_url, run_server

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_build_interrupted_by_a_killed_server(backend, tmp_path, index_url):
    for url in database_url(backend, tmp_path):
        env_vars = base_env(tmp_path, url, index_url)
        with run_server(env_vars) as first:
            token = first.add_user("acme", "alice")
            client = Client(first.http_url, first.ws_url, token)
            env = await create(client, pipLibraries=["yard-slow"])
            version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
            for _ in range(100):
                current = await get(client, env["id"])
                if current["versions"][0]["status"] == "BUILDING":
                    break
                await asyncio.sleep(0.02)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait()
            await client.aclose()

        with run_server(env_vars) as second:
            client = Client(second.http_url, second.ws_url, token)
            env = await get(client, env["id"])
            assert env["status"] == "FAILED"
            failed = env["versions"][0]
            assert (failed["id"], failed["status"]) == (version["id"], "FAILED")
            assert failed["log"].splitlines()[-1] == (
                "Build failed: the server stopped while this build was running"
            )
            # The environment can be built again; the failed number is reused.
            await client(BUILD, id=env["id"])
            env = await wait_built(client, env["id"])
            assert env["status"] == "DRAFT"
            assert [(v["number"], v["status"]) for v in env["versions"]] == [(1, "SUCCEEDED")]
            await client.aclose()
