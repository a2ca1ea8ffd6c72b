"""What only a distributed deployment has: several API processes, workers that die, Redis."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from redis.asyncio import Redis

from tests.support.client import Client, collect_log
from tests.support.ops import BUILD, create, get, wait_built
from tests.support.server import Server, start_worker, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("server", ["distributed"], indirect=True)]


def on(peer: Server, client: Client) -> Client:
    """The same caller, talking to another API process."""
    return Client(peer.http_url, peer.ws_url, client.token)


async def test_subscriber_on_another_api_sees_every_line(server, people):
    assert server.peer is not None
    alice_there = on(server.peer, people.alice)
    env = await create(people.alice, pipLibraries=["yard-slow", "yard-alpha"])
    version = (await people.alice(BUILD, id=env["id"]))["buildEnvironment"]
    # Several subscribers on the other API process, joining at different moments.
    first = asyncio.create_task(collect_log(alice_there, version["id"]))
    await asyncio.sleep(1.0)
    second = asyncio.create_task(collect_log(alice_there, version["id"]))
    lines_first, lines_second = await asyncio.gather(first, second)
    env = await wait_built(people.alice, env["id"])
    stored = env["versions"][0]["log"]
    for lines in (lines_first, lines_second):
        assert [line["number"] for line in lines] == list(range(1, len(lines) + 1))
        assert "\n".join(line["text"] for line in lines) == stored
    assert env["status"] == "DRAFT"
    await alice_there.aclose()


async def test_log_stream_expires_and_late_joiners_read_the_database(server, people):
    env = await create(people.alice, pipLibraries=["yard-delta"])
    version = (await people.alice(BUILD, id=env["id"]))["buildEnvironment"]
    lines = await collect_log(people.alice, version["id"])
    stream = f"{server.env['ENVYARD_QUEUE_NAME']}:log:{version['id']}:1"
    redis = Redis.from_url(server.env["ENVYARD_REDIS_URL"], decode_responses=True)
    try:
        ttl = await redis.ttl(stream)
        assert 0 < ttl <= 3  # ENVYARD_LOG_RETENTION in the tests
        for _ in range(50):  # polling Redis: it has no "key expired" event we can await here
            if not await redis.exists(stream):
                break
            await asyncio.sleep(0.2)
        assert not await redis.exists(stream)
    finally:
        await redis.aclose()
    late = on(server.peer, people.alice)
    assert await collect_log(late, version["id"]) == lines
    await late.aclose()


async def test_fifty_concurrent_builds_make_one_build(server, people):
    env = await create(people.alice, pipLibraries=["yard-extra"])
    apis = [people.alice, on(server.peer, people.alice)]
    results = await asyncio.gather(*(apis[i % 2].raw(BUILD, id=env["id"]) for i in range(50)))
    ok = [r for r in results if not r.get("errors")]
    codes = {r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")}
    assert len(ok) == 1 and codes == {"INVALID_STATE"}
    env = await wait_built(people.alice, env["id"])
    assert [(v["number"], v["status"]) for v in env["versions"]] == [(1, "SUCCEEDED")]
    assert env["versions"][0]["log"].count("Build of ") == 1  # one job ran it
    await apis[1].aclose()


async def test_worker_killed_mid_build(server, people):
    """SIGKILL every worker during a build: the version ends FAILED within the bound."""
    env = await create(people.alice, pipLibraries=["yard-slow"])
    await people.alice(BUILD, id=env["id"])
    for _ in range(200):
        current = await get(people.alice, env["id"])
        if current["versions"][0]["status"] == "BUILDING":
            break
        await asyncio.sleep(0.05)
    assert current["versions"][0]["status"] == "BUILDING"
    for worker in server.workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed_at = time.monotonic()
    bound = float(server.env["ENVYARD_STALE_BUILD_AFTER"])
    env = await wait_built(people.alice, env["id"], timeout=bound * 3)
    elapsed = time.monotonic() - killed_at
    assert env["status"] == "FAILED"
    failed = env["versions"][0]
    assert failed["status"] == "FAILED"
    assert "its worker stopped responding" in failed["log"].splitlines()[-1]
    # Stale after `bound` seconds without a heartbeat, noticed by a watchdog that looks every
    # bound/4 seconds; the heartbeat before the kill may be up to bound/4 old.
    assert elapsed < bound * 1.6, elapsed

    # New workers; the environment builds again, reusing the failed number.
    for old in server.workers:
        stop_process(old)
    server.workers[:] = [start_worker(server.env), start_worker(server.env)]
    await people.alice(BUILD, id=env["id"])
    env = await wait_built(people.alice, env["id"])
    assert env["status"] == "DRAFT"
    assert [(v["number"], v["status"]) for v in env["versions"]] == [(1, "SUCCEEDED")]
