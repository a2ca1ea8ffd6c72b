"""What only a distributed deployment has: several API processes, workers that die, Redis."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import asyncpg
import pytest
from redis.asyncio import Redis

from app.builders.toolbox import CACHE_MOUNT, TOOLS_MOUNT
from tests.support.client import Client, collect_log
from tests.support.ops import BUILD, create, get, wait_built
from tests.support.server import Server, start_worker, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("server", ["distributed"], indirect=True)]

CANCEL = "mutation($v: ID!) { cancelBuild(versionId: $v) { id status } }"


def on(peer: Server, client: Client) -> Client:
    """The same caller, talking to another API process."""
    return Client(peer.http_url, peer.ws_url, client.token)


async def build_containers(server: Server, version_id: str | None = None) -> list[dict[str, Any]]:
    """The deployment's build containers (of one version), in any state: Id, State, Labels."""
    labels = [f"envyard.deployment={server.env['ENVYARD_QUEUE_NAME']}", "envyard.role=build"]
    if version_id is not None:
        labels.append(f"envyard.version={version_id}")
    async with aiodocker.Docker() as docker:
        found = await docker.containers.list(all=True, filters={"label": labels})
    return [{key: c[key] for key in ("Id", "State", "Labels")} for c in found]


async def running_container(server: Server, version_id: str) -> dict[str, str]:
    """The labels of the version's build container, once it runs."""
    deadline = time.monotonic() + 60
    while True:
        found = [c for c in await build_containers(server, version_id) if c["State"] == "running"]
        if found:
            labels: dict[str, str] = found[0]["Labels"]
            return labels
        assert time.monotonic() < deadline, f"no running build container for {version_id}"
        await asyncio.sleep(0.05)


async def wait_removed(server: Server, version_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await build_containers(server, version_id):
        assert time.monotonic() < deadline, f"{version_id}'s container is there after {timeout} s"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module", autouse=True)
async def no_build_container_left(server: Server) -> AsyncIterator[None]:
    """Every build of this module has ended by its end: none of their containers remain."""
    yield
    bound = float(server.env["ENVYARD_STALE_BUILD_AFTER"]) / 2  # two heartbeat intervals
    for _ in range(int(bound / 0.1)):
        if not (left := await build_containers(server)):
            break
        await asyncio.sleep(0.1)
    async with aiodocker.Docker() as docker:
        for container in left:
            await docker.containers.container(container["Id"]).delete(force=True)
    assert not left, [c["Labels"] for c in left]


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


async def stored_log(server: Server, version_id: str, at_least: int) -> str:
    """The version's log as the database holds it, once it has `at_least` lines."""
    conn = await asyncpg.connect(server.env["ENVYARD_DATABASE_URL"])
    try:
        for _ in range(100):
            log = await conn.fetchval("SELECT log FROM version WHERE id = $1", int(version_id))
            if log and len(log.splitlines()) >= at_least:
                return str(log)
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"the database holds no log lines of version {version_id}")


async def test_worker_killed_mid_build(server, people):
    """SIGKILL every worker during a build: the version ends FAILED within the bound, and the
    next workers remove the build container the killed one left."""
    env = await create(people.alice, pipLibraries=["yard-slow"])
    version = (await people.alice(BUILD, id=env["id"]))["buildEnvironment"]
    await running_container(server, version["id"])
    current = await get(people.alice, env["id"])
    assert current["versions"][0]["status"] == "BUILDING"
    # The worker stores its log lines in the database as they come, not only at the end.
    stored = await stored_log(server, version["id"], at_least=3)
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
    assert failed["log"].startswith(stored)
    # Stale after `bound` seconds without a heartbeat, noticed by a watchdog that looks every
    # bound/4 seconds; the heartbeat before the kill may be up to bound/4 old.
    assert elapsed < bound * 1.6, elapsed
    assert await build_containers(server, version["id"])  # nobody left to remove it

    # New workers remove it in their first pass, once their runtime is open (the interpreter
    # starts, connects to PostgreSQL and Redis: 0.6-1.2 s here).
    for old in server.workers:
        stop_process(old)
    server.workers[:] = [start_worker(server.env), start_worker(server.env)]
    await wait_removed(server, version["id"], timeout=10)

    # The environment builds again, reusing the failed number.
    await people.alice(BUILD, id=env["id"])
    env = await wait_built(people.alice, env["id"])
    assert env["status"] == "DRAFT"
    assert [(v["number"], v["status"]) for v in env["versions"]] == [(1, "SUCCEEDED")]
    # The image inherits the build container's labels; containers run from it are not builds.
    async with aiodocker.Docker() as docker:
        image = await docker.images.inspect(f"envyard/acme/{env['shortName']}:1")
    assert image["Config"]["Labels"]["envyard.role"] == "image"


async def test_surviving_worker_removes_a_killed_workers_container(server, people):
    """Kill only the worker running a build: the other one, on the same engine, removes its
    container once the watchdog has failed the build. Nothing restarts."""
    env = await create(people.alice, pipLibraries=["yard-slow"])
    version = (await people.alice(BUILD, id=env["id"]))["buildEnvironment"]
    labels = await running_container(server, version["id"])
    pid = int(labels["envyard.worker"].rsplit(":", 1)[1])
    victim = next(w for w in server.workers if w.pid == pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    stale = float(server.env["ENVYARD_STALE_BUILD_AFTER"])
    interval = stale / 4
    # The last heartbeat precedes the kill; a watchdog (every interval) fails the build within
    # stale + interval of it, and the survivor's next pass (every interval) removes the
    # container: stale + 2 intervals, and 1 s for the processes' own work (4.4-5.3 s here).
    await wait_removed(server, version["id"], timeout=stale + 2 * interval + 1)
    failed = (await get(people.alice, env["id"]))["versions"][0]
    assert failed["status"] == "FAILED"
    assert "its worker stopped responding" in failed["log"].splitlines()[-1]

    stop_process(victim)
    server.workers[server.workers.index(victim)] = start_worker(server.env)


async def test_cancelled_build_removes_its_container(server, people):
    env = await create(people.alice, pipLibraries=["yard-slow"])
    version = (await people.alice(BUILD, id=env["id"]))["buildEnvironment"]
    await running_container(server, version["id"])
    assert (await people.alice(CANCEL, v=version["id"]))["cancelBuild"]["status"] == "FAILED"
    # The job's abort (or the heartbeat, within an interval) stops the build, which removes
    # its container itself (0.5 s after cancelBuild was sent, here).
    await wait_removed(server, version["id"], timeout=2)


async def test_images_hold_the_environment_but_not_the_caches(server, people):
    """uv's and conda's caches and envyard's tools are mounted into build containers, never
    committed: an image run without them holds its packages and nothing of either."""
    env = await create(people.alice, pipLibraries=["yard-alpha==1.0"])
    await people.alice(BUILD, id=env["id"])
    assert (await wait_built(people.alice, env["id"]))["status"] == "DRAFT"
    script = (
        f"find {CACHE_MOUNT} {TOOLS_MOUNT} -mindepth 1 | wc -l; "
        "/opt/envyard/venv/bin/python -c 'import importlib.metadata as m; "
        'print(m.version("yard-alpha"))\''
    )
    async with aiodocker.Docker() as docker:
        container = await docker.containers.run(
            {
                "Image": f"envyard/acme/{env['shortName']}:1",
                "Cmd": ["sh", "-c", script],
                "HostConfig": {"NetworkMode": "none"},
                "Labels": {"envyard.test": "images"},
            }
        )
        try:
            await container.wait(timeout=60)
            out = "".join(await container.log(stdout=True, stderr=True)).split()
        finally:
            await container.delete(force=True)
    assert out == ["0", "1.0"], out
