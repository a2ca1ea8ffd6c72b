"""Standalone servers that die, restart, or start twice: builds and logs stay truthful.

- a killed server's running build is failed at the next start, once its heartbeat is seen to
  have stopped, and keeps every log line written before the kill;
- a second server on the same data directory is refused before it touches anything;
- a server starting on the same database (another data directory) leaves a live build alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
import time

import pytest

from tests.support.client import Client
from tests.support.ops import BUILD, create, get, wait_built
from tests.support.server import base_env, database_url, free_port, run_server

pytestmark = pytest.mark.e2e

FAST_HEARTBEAT = {"ENVYARD_STALE_BUILD_AFTER": "2"}  # heartbeats every 0.5 s


async def lines_until(client: Client, version_id: str, text: str) -> list[str]:
    """The log lines of a running build, read live until one starts with `text`."""
    seen: list[str] = []
    async with client.subscription(
        "subscription($v: ID!) { buildLog(versionId: $v) { text } }", v=version_id
    ) as messages:
        async for payload in messages:
            seen.append(payload["data"]["buildLog"]["text"])
            if seen[-1].startswith(text):
                return seen
    raise AssertionError(f"the build ended before {text!r}: {seen}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_build_interrupted_by_a_killed_server(backend, tmp_path, index_url):
    for url in database_url(backend, tmp_path):
        env_vars = {**base_env(tmp_path, url, index_url), **FAST_HEARTBEAT}
        with run_server(env_vars) as first:
            token = first.add_user("acme", "alice")
            client = Client(first.http_url, first.ws_url, token)
            env = await create(client, pipLibraries=["yard-slow"])
            version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
            # uv now waits 3 s for yard-slow's index page: the lines so far are stored
            # within LOG_STORE_INTERVAL (0.5 s).
            before_kill = await lines_until(client, version["id"], "$ uv pip compile")
            await asyncio.sleep(1.2)
            first.process.send_signal(signal.SIGKILL)
            first.process.wait()
            await client.aclose()

        with run_server(env_vars) as second:
            client = Client(second.http_url, second.ws_url, token)
            started = time.monotonic()
            env = await wait_built(client, env["id"], timeout=20)
            # Decided from the heartbeat: two intervals (1 s) without one, then failed.
            assert time.monotonic() - started < 5
            assert env["status"] == "FAILED"
            failed = env["versions"][0]
            assert (failed["id"], failed["status"]) == (version["id"], "FAILED")
            log = failed["log"].splitlines()
            assert log[: len(before_kill)] == before_kill  # nothing written before the kill lost
            assert log[-1] == "Build failed: the server stopped while this build was running"
            # The environment can be built again; the failed number is reused.
            await client(BUILD, id=env["id"])
            env = await wait_built(client, env["id"])
            assert env["status"] == "DRAFT", env["versions"][-1]["log"]
            assert [(v["number"], v["status"]) for v in env["versions"]] == [(1, "SUCCEEDED")]
            await client.aclose()


async def test_second_server_on_the_same_data_directory_is_refused(tmp_path, index_url):
    for url in database_url("sqlite", tmp_path):
        env_vars = {**base_env(tmp_path, url, index_url), **FAST_HEARTBEAT}
        with run_server(env_vars) as first:
            # It says where its data is, where GraphiQL is and the admin's token, once each.
            said = "".join(first.output)
            assert said.count(f"envyard: data directory {tmp_path}") == 1
            assert said.count("GraphiQL at") == 1 and said.count(first.admin_token) == 1
            assert "Tortoise" not in said
            # The data directory and its database are the owner's only.
            assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o700
            assert stat.S_IMODE(os.stat(tmp_path / "envyard.db").st_mode) == 0o600
            token = first.add_user("acme", "alice")
            client = Client(first.http_url, first.ws_url, token)
            env = await create(client, pipLibraries=["yard-slow"])
            version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
            await lines_until(client, version["id"], "$ uv pip compile")

            started = time.monotonic()
            second = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "app.cli", "serve", "--port", str(free_port())],
                env=env_vars,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await asyncio.wait_for(second.communicate(), 60)
            assert time.monotonic() - started < 10
            assert second.returncode == 2, stderr
            message = stderr.decode().strip().splitlines()[-1]
            assert "another envyard server is using the data directory" in message
            assert f"pid {first.process.pid}" in message and str(tmp_path) in message

            env = await wait_built(client, env["id"])
            assert env["status"] == "DRAFT"
            log = env["versions"][0]["log"].splitlines()
            assert "interrupted" not in env["versions"][0]["log"]
            assert log[-1] == "Build succeeded: version 1 is ready"
            await client.aclose()


async def test_a_server_starting_on_the_same_database_leaves_a_live_build_alone(
    tmp_path, index_url
):
    for url in database_url("postgres", tmp_path):
        first_dir, second_dir = tmp_path / "one", tmp_path / "two"
        with run_server({**base_env(first_dir, url, index_url), **FAST_HEARTBEAT}) as first:
            token = first.add_user("acme", "alice")
            client = Client(first.http_url, first.ws_url, token)
            env = await create(client, pipLibraries=["yard-sloth"])
            version = (await client(BUILD, id=env["id"]))["buildEnvironment"]
            await lines_until(client, version["id"], "$ uv pip compile")
            with run_server({**base_env(second_dir, url, index_url), **FAST_HEARTBEAT}):
                # It watches the running build's heartbeat for two intervals and sees it move
                # (yard-sloth's index page takes 8 s: the build outlasts that).
                await asyncio.sleep(2)
                assert (await get(client, env["id"]))["status"] == "IN_PROGRESS"
                env = await wait_built(client, env["id"])
            assert env["status"] == "DRAFT", env["versions"][0]["log"]
            await client.aclose()
