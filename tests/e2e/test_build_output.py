"""What a build runs in and says when its package index cannot be reached (standalone)."""

from __future__ import annotations

import pytest

from tests.support.client import Client
from tests.support.ops import build, create
from tests.support.server import base_env, database_url, free_port, run_server

pytestmark = pytest.mark.e2e


async def test_unreachable_index_and_a_neutral_working_directory(tmp_path, index_url):
    # The server runs from a folder holding a project that no offered Python satisfies: uv
    # must not read it (it did, and warned in every build log).
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "someone-else"\nversion = "1"\nrequires-python = ">=3.99"\n'
    )
    closed = f"http://127.0.0.1:{free_port()}/simple/"  # nothing listens there
    for url in database_url("sqlite", tmp_path):
        with run_server(base_env(tmp_path / "data", url, closed), cwd=project) as server:
            client = Client(server.http_url, server.ws_url, server.admin_token)
            env = await create(client, pipLibraries=["yard-alpha"])
            env, lines = await build(client, env["id"])
            texts = [line["text"] for line in lines]
            assert env["status"] == "FAILED"
            assert texts[-1] == (
                "Build failed: uv pip install failed: the package index "
                f"{closed} could not be reached (Connection refused (os error 111))."
            )
            assert not [t for t in texts if "requires-python" in t or "incompatible" in t]
            assert "Creating a Python 3.11 environment for version 1" in texts
            await client.aclose()
