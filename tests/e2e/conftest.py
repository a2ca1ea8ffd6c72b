"""A real envyard server (uvicorn) per database backend, with users in two organizations."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from tests.support.client import Client
from tests.support.server import Server, base_env, database_url, run_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, index_url: str
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    for url in database_url(request.param, data_dir):
        with run_server(base_env(data_dir, url, index_url)) as running:
            yield running


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
