"""A real envyard deployment per mode, with users in two organizations.

- sqlite, postgres: standalone `envyard serve` (uvicorn), builds with uv on this host;
- distributed: two API processes and two `envyard worker` processes sharing PostgreSQL and
  Redis, building Docker images.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.client import Client
from tests.support.docker import BASE_IMAGE, in_thread, require_docker
from tests.support.server import (
    Server,
    base_env,
    database_url,
    distributed_env,
    run_server,
    standalone_sqlite,
    start_worker,
    stop_process,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session", params=["sqlite", "postgres", "distributed"])
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    index_url: str,
    conda_channel_url: str,
) -> Iterator[Server]:
    mode = request.param
    data_dir = tmp_path_factory.mktemp(f"data-{mode}")
    if mode != "distributed":
        for url in database_url(mode, data_dir):
            with run_server(deployment_env(data_dir, url, index_url, conda_channel_url)) as running:
                yield running
        return
    in_thread(require_docker)
    for url in database_url("postgres", data_dir):
        base = deployment_env(data_dir, url, index_url, conda_channel_url)
        env = distributed_env(base, BASE_IMAGE)
        with run_server(env) as api, run_server(env) as peer:
            api.mode, api.peer = "distributed", peer
            api.workers = [start_worker(env), start_worker(env)]
            try:
                yield api
            finally:
                for worker in api.workers:
                    stop_process(worker)


def deployment_env(
    data_dir: Path, url: str, index_url: str, conda_channel_url: str
) -> dict[str, str]:
    # A WebSocket connection's token is checked again every 0.2 s (30 s by default), so that
    # tests/e2e/test_tokens.py sees a rotated token end its streams at once.
    env = base_env(data_dir, url, index_url, conda_channel_url)
    return {**env, "ENVYARD_TOKEN_RECHECK": "0.2"}


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory, index_url: str) -> Iterator[Server]:
    """A standalone SQLite server of the module's own (the browser tests)."""
    with standalone_sqlite(tmp_path_factory.mktemp("data-standalone"), index_url) as running:
        yield running


@pytest.fixture
async def http(standalone: Server) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to the module's standalone server."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{standalone.port}", timeout=30) as c:
        yield c


@dataclass
class People:
    admin: Client  # the bootstrap admin of org "default"
    alice: Client  # acme, user
    bob: Client  # acme, user
    carol: Client  # acme, admin
    dave: Client  # globex, user
    erin: Client  # globex, admin
    anonymous: Client
    forged: Client


_tokens: dict[int, dict[str, str]] = {}


@pytest.fixture
async def people(server: Server) -> AsyncIterator[People]:
    tokens = _tokens.get(id(server))
    if tokens is None:
        tokens = _tokens[id(server)] = {
            "admin": server.admin_token,
            "alice": server.add_user("acme", "alice"),
            "bob": server.add_user("acme", "bob"),
            "carol": server.add_user("acme", "carol", admin=True),
            "dave": server.add_user("globex", "dave"),
            "erin": server.add_user("globex", "erin", admin=True),
        }

    def client(token: str | None) -> Client:
        return Client(server.http_url, server.ws_url, token)

    crowd = People(
        **{name: client(token) for name, token in tokens.items()},
        anonymous=client(None),
        forged=client("ey_not-a-real-token"),
    )
    yield crowd
    for c in vars(crowd).values():
        await c.aclose()


@dataclass
class Team:
    """An organization of its own, for tests that count everything in it."""

    admin: Client
    members: list[Client]


_teams: dict[tuple[str, str], dict[str, str]] = {}  # (server, org) -> name -> token


@pytest.fixture
async def teams(server: Server) -> AsyncIterator[Callable[[str, int], Team]]:
    """teams(org, n): an admin and n members of organization `org` (made once per server)."""
    opened: list[Client] = []

    def make(org: str, members: int) -> Team:
        tokens = _teams.get((server.admin_token, org))
        if tokens is None:
            names = [f"{org}-admin", *(f"{org}-{i}" for i in range(members))]
            tokens = _teams[(server.admin_token, org)] = {
                name: server.add_user(org, name, admin=(name == names[0])) for name in names
            }
        assert len(tokens) == members + 1, f"team {org!r} was made with other members"
        clients = [Client(server.http_url, server.ws_url, token) for token in tokens.values()]
        opened.extend(clients)
        return Team(clients[0], clients[1:])

    yield make
    for c in opened:
        await c.aclose()
