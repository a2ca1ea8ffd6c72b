"""Storage under control, and Docker workers on two hosts through a registry.

Two deployments of their own, both with ENVYARD_KEEP_VERSIONS=2:
- local: standalone on SQLite, venvs and conda-less prefixes on this host;
- hosts: PostgreSQL, Redis, an image registry on 127.0.0.1, and two `envyard worker`
  processes on two Docker engines (worker A on engine 1, worker B on engine 2, the second
  engine standing for another host). Only one worker runs at a time, so each build's host
  is known.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker
import asyncpg
import httpx
import pytest

from tests.support.client import Client
from tests.support.docker import ENGINE_2, REGISTRY, in_thread, require_two_hosts, run_in_image
from tests.support.ops import ACTIVATE, APPROVE, SUBMIT, UPDATE, build, create, get, revert
from tests.support.server import (
    Server,
    base_env,
    database_url,
    distributed_env,
    run_server,
    start_worker,
    stop_process,
)

pytestmark = pytest.mark.e2e

BASE = f"{REGISTRY}/envyard-test/bookworm-python:3.11"  # pushed there by scripts/docker-hosts
STORAGE = (
    "query($id: ID!) { environment(id: $id) { versions { id number status archived sizeBytes "
    "revertedFrom log packages { name version manager } } } }"
)
PROBE = (
    "import importlib.metadata as m, json; "
    "names = ['yard-alpha', 'yard-pkg1', 'yard-pkg2', 'yard-pkg3', 'yard-pkg4']; "
    "print(json.dumps({n: v for n in names if (v := next((d.version for d in "
    "m.distributions() if d.metadata['Name'] == n), None))}))"
)


@dataclass
class Deployment:
    mode: str
    api: Server
    database: str
    alice: Client
    carol: Client  # an admin of alice's organization
    worker_env: dict[str, str] = field(default_factory=dict)
    worker: subprocess.Popen[str] | None = None
    on: str = ""  # the engine of the running worker: "A" or "B"

    def use(self, engine: str) -> None:
        """Run builds on worker A (engine 1) or B (engine 2) only from now on."""
        if self.on == engine:
            return
        if self.worker is not None:
            stop_process(self.worker)
        env = dict(self.worker_env)
        if engine == "B":
            env["ENVYARD_DOCKER_HOST"] = ENGINE_2
        self.worker, self.on = start_worker(env), engine

    @property
    def url(self) -> str | None:
        """The Docker engine of the running worker (None: the default one)."""
        return ENGINE_2 if self.on == "B" else None


@pytest.fixture(scope="module", params=["local", "hosts"])
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, index_url: str
) -> Iterator[tuple[str, Server, str, dict[str, str]]]:
    mode = request.param
    data_dir = tmp_path_factory.mktemp(f"retention-{mode}")
    if mode == "local":
        for url in database_url("sqlite", data_dir):
            env = {**base_env(data_dir, url, index_url), "ENVYARD_KEEP_VERSIONS": "2"}
            with run_server(env) as api:
                yield mode, api, url, env
        return
    in_thread(require_two_hosts)
    for url in database_url("postgres", data_dir):
        env = {
            **distributed_env(base_env(data_dir, url, index_url), BASE),
            "ENVYARD_KEEP_VERSIONS": "2",
            "ENVYARD_REGISTRY": f"{REGISTRY}/t{uuid.uuid4().hex[:10]}",
        }
        with run_server(env) as api:
            yield mode, api, url, env


_tokens: dict[int, tuple[str, str]] = {}


@pytest.fixture
async def deployment(
    deployed: tuple[str, Server, str, dict[str, str]],
) -> AsyncIterator[Deployment]:
    mode, api, url, env = deployed
    if id(api) not in _tokens:
        _tokens[id(api)] = (api.add_user("acme", "alice"), api.add_user("acme", "carol", True))
    alice, carol = _tokens[id(api)]
    here = Deployment(
        mode,
        api,
        url,
        Client(api.http_url, api.ws_url, alice),
        Client(api.http_url, api.ws_url, carol),
        worker_env=env,
    )
    if mode == "hosts":
        here.use("A")
    try:
        yield here
    finally:
        if here.worker is not None:
            stop_process(here.worker)
        await here.alice.aclose()
        await here.carol.aclose()


async def versions(client: Client, env_id: str) -> dict[int, dict[str, Any]]:
    found = (await client(STORAGE, id=env_id))["environment"]["versions"]
    return {v["number"]: v for v in found}


async def installed(deployment: Deployment, activation: dict[str, Any], url: str | None) -> dict:
    if activation["pythonPath"]:
        proc = await asyncio.create_subprocess_exec(
            activation["pythonPath"], "-c", PROBE, stdout=subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        return dict(json.loads(out))
    return dict(json.loads(await run_in_image(activation["image"], "python", "-c", PROBE, url=url)))


async def events(database: str) -> list[tuple[str, int | None]]:
    """The (kind, version number) of every event, oldest first, from the database."""
    query = "SELECT kind, version_number FROM event ORDER BY id"
    if database.startswith("sqlite://"):
        with sqlite3.connect(database.removeprefix("sqlite://")) as conn:
            return [(str(k), n) for k, n in conn.execute(query)]
    conn = await asyncpg.connect(database)
    try:
        return [(row["kind"], row["version_number"]) for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def image_state(deployment: Deployment, version: dict[str, Any], env_id: str) -> dict:
    """What is left of a version's image: the tag on the worker's engine and, with a
    registry, its manifest there."""
    location = await stored_location(deployment, version["id"])
    name, _, digest = location.partition("@")
    tag = f"{name}:{version['number']}"
    async with aiodocker.Docker(url=deployment.url) as docker:
        try:
            await docker.images.inspect(tag)
            tagged = True
        except aiodocker.DockerError:
            tagged = False
    host, _, path = name.partition("/")
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.head(
            f"http://{host}/v2/{path}/manifests/{digest}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
    return {"tagged": tagged, "manifest": answer.status_code}


async def stored_location(deployment: Deployment, version_id: str) -> str:
    query = "SELECT location FROM version WHERE id = "
    if deployment.database.startswith("sqlite://"):
        with sqlite3.connect(deployment.database.removeprefix("sqlite://")) as conn:
            return str(conn.execute(query + "?", (int(version_id),)).fetchone()[0])
    conn = await asyncpg.connect(deployment.database)
    try:
        return str(await conn.fetchval(query + "$1", int(version_id)))
    finally:
        await conn.close()


async def test_old_versions_are_archived_and_a_revert_restores_one(deployment):
    alice, carol = deployment.alice, deployment.carol
    env = await create(alice, pipLibraries=["yard-alpha==1.0"])
    env_id = env["id"]
    wanted = ["yard-alpha==1.0"]
    for number in range(1, 6):
        if number > 1:
            wanted = [*wanted, f"yard-pkg{number - 1}"]
            await alice(UPDATE, id=env_id, i={"pipLibraries": wanted})
        built, lines = await build(alice, env_id)
        assert built["status"] == "DRAFT", "\n".join(line["text"] for line in lines)
        if number == 2:  # version 2 is published: it keeps its files for good
            await alice(SUBMIT, id=env_id)
            await carol(APPROVE, id=env_id)
    found = await versions(alice, env_id)
    # Kept: the two latest (5, 4) and the published one (2); archived: 1 and 3.
    assert {n: v["archived"] for n, v in found.items()} == {
        1: True, 2: False, 3: True, 4: False, 5: False
    }  # fmt: skip
    # A local build's size is measured once its log has closed: the last one's soon after
    for _ in range(100):
        if all(v["sizeBytes"] for v in found.values()):
            break
        await asyncio.sleep(0.05)
        found = await versions(alice, env_id)
    assert all(v["sizeBytes"] and v["sizeBytes"] > 0 for v in found.values()), found
    assert [p["name"] for p in found[1]["packages"]] == ["yard-alpha"]  # the record stays
    if deployment.mode == "local":
        # The policy runs after the build has ended (its log closed): a version is marked
        # archived, then its files go.
        env_dirs = Path(deployment.api.env["ENVYARD_DATA_DIR"]) / "envs" / env_id
        for _ in range(200):
            if sorted(p.name for p in env_dirs.iterdir()) == ["v2", "v4", "v5"]:
                break
            await asyncio.sleep(0.05)
        assert sorted(p.name for p in env_dirs.iterdir()) == ["v2", "v4", "v5"]
    else:
        gone = {"tagged": False, "manifest": 404}
        for _ in range(200):  # as above: marked archived first, then untagged
            if await image_state(deployment, found[1], env_id) == gone:
                break
            await asyncio.sleep(0.05)
        assert await image_state(deployment, found[1], env_id) == gone
        assert await image_state(deployment, found[2], env_id) == {
            "tagged": True, "manifest": 200
        }  # fmt: skip

    # A revert to an archived version rebuilds it from its lock file, and it is active.
    reverted = await revert(alice, env_id, 1)
    assert reverted["status"] == "DRAFT"
    found = await versions(alice, env_id)
    restored = found[6]
    assert restored["revertedFrom"] == 1 and not restored["archived"]
    assert "rebuilding it from its lock file" in restored["log"], restored["log"]
    assert "Rebuilding exactly the 1 package of the version's lock file" in restored["log"]
    assert found[4]["archived"], "the retention policy ran again after the restore"
    activation = (await alice(ACTIVATE, id=env_id))["activateEnvironment"]
    assert activation["version"]["number"] == 6
    assert await installed(deployment, activation, deployment.url) == {"yard-alpha": "1.0"}
    # Everyone else activates the published version, whose files were kept.
    published = (await carol(ACTIVATE, id=env_id))["activateEnvironment"]
    assert published["version"]["number"] == 2
    assert await installed(deployment, published, deployment.url) == {
        "yard-alpha": "1.0", "yard-pkg1": "1.0"
    }  # fmt: skip

    mine = [e for e in await events(deployment.database) if e[0] in ("ARCHIVED", "RESTORED")]
    assert mine[-4:] == [("ARCHIVED", 1), ("ARCHIVED", 3), ("RESTORED", 6), ("ARCHIVED", 4)]


async def test_gc_prints_what_it_frees_and_a_dry_run_changes_nothing(deployment):
    alice = deployment.alice
    env = await create(alice, pipLibraries=["yard-alpha==1.0"])
    for extra in ([], ["yard-pkg1"]):
        if extra:
            await alice(UPDATE, id=env["id"], i={"pipLibraries": ["yard-alpha==1.0", *extra]})
        await build(alice, env["id"])
    short = env["shortName"]
    gc_env = dict(deployment.worker_env or deployment.api.env)
    if deployment.url:
        gc_env["ENVYARD_DOCKER_HOST"] = deployment.url

    async def gc(*args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app.cli", "gc", *args],
            env=gc_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == status, result.stderr
        return result

    dry = (await gc("--keep", "1", "--dry-run")).stdout
    assert f"would archive acme/{short} version 1 (" in dry, dry
    assert not (await versions(alice, env["id"]))[1]["archived"]
    done = (await gc("--keep", "1")).stdout
    line = next(line for line in done.splitlines() if f"acme/{short} version 1" in line)
    assert line.startswith("archived ") and "freed here" in line, done
    assert (await versions(alice, env["id"]))[1]["archived"]
    assert f"acme/{short}" not in (await gc("--keep", "1")).stdout, "nothing left to archive"
    refused = await gc("--keep", "0", status=2)
    assert "at least 1" in refused.stderr


@pytest.mark.parametrize("deployed", ["hosts"], indirect=True)
async def test_versions_move_between_hosts_through_the_registry(deployment):
    alice = deployment.alice
    env = await create(alice, pipLibraries=["yard-alpha==1.0"])
    env_id = env["id"]
    deployment.use("A")
    first, _ = await build(alice, env_id)
    assert first["status"] == "DRAFT"

    deployment.use("B")  # another host: it has never seen version 1
    await alice(UPDATE, id=env_id, i={"pipLibraries": ["yard-alpha==1.0", "yard-pkg1"]})
    second, lines = await build(alice, env_id)
    texts = [line["text"] for line in lines]
    assert second["status"] == "DRAFT", "\n".join(texts)
    assert any(t.startswith("Pulling ") and "@sha256:" in t for t in texts), texts
    assert any(t.startswith("Pushed ") for t in texts)
    activation = (await alice(ACTIVATE, id=env_id))["activateEnvironment"]
    assert "@sha256:" in activation["image"]
    # The digest reference runs on the other engine, with the recorded versions.
    assert await installed(deployment, activation, None) == {
        "yard-alpha": "1.0", "yard-pkg1": "1.0"
    }  # fmt: skip

    deployment.use("A")
    reverted = await revert(alice, env_id, 1)
    assert reverted["status"] == "DRAFT"
    third = (await get(alice, env_id))["versions"][2]
    assert "without reinstalling" in third["log"], third["log"]
    activation = (await alice(ACTIVATE, id=env_id))["activateEnvironment"]
    assert activation["version"]["number"] == 3
    assert await installed(deployment, activation, ENGINE_2) == {"yard-alpha": "1.0"}
