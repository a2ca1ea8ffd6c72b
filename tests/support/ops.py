"""GraphQL operations the tests send, and helpers built on them."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.support.client import Client, collect_log

VERSION_FIELDS = """
  id number status condaLibraries pipLibraries log createdAt finishedAt revertedFrom
  packages { name version manager }
"""

ENV_FIELDS = f"""
  id shortName fullName description pythonVersion status reviewFeedback
  condaLibraries pipLibraries
  baseEnvironment {{ name pythonVersion }}
  creator {{ id username isAdmin }}
  versions {{ {VERSION_FIELDS} }}
  latestVersion {{ number status }}
  activeVersion {{ id number }}
  publishedVersion {{ id number }}
"""

CREATE = f"mutation($i: EnvironmentInput!) {{ createEnvironment(input: $i) {{ {ENV_FIELDS} }} }}"
UPDATE = (
    "mutation($id: ID!, $i: EnvironmentUpdate!) "
    f"{{ updateEnvironment(id: $id, input: $i) {{ {ENV_FIELDS} }} }}"
)
GET = f"query($id: ID!) {{ environment(id: $id) {{ {ENV_FIELDS} }} }}"
LIST = "{ environments { id shortName status } }"
PENDING = "{ pendingEnvironments { id shortName status creator { username } } }"
BUILD = f"mutation($id: ID!) {{ buildEnvironment(id: $id) {{ {VERSION_FIELDS} }} }}"
REVERT = (
    f"mutation($id: ID!, $v: Int!) {{ revertEnvironment(id: $id, version: $v) "
    f"{{ {VERSION_FIELDS} }} }}"
)
SUBMIT = f"mutation($id: ID!) {{ submitEnvironment(id: $id) {{ {ENV_FIELDS} }} }}"
APPROVE = f"mutation($id: ID!) {{ approveEnvironment(id: $id) {{ {ENV_FIELDS} }} }}"
REJECT = (
    f"mutation($id: ID!, $f: String!) {{ rejectEnvironment(id: $id, feedback: $f) "
    f"{{ {ENV_FIELDS} }} }}"
)
DEPRECATE = f"mutation($id: ID!) {{ deprecateEnvironment(id: $id) {{ {ENV_FIELDS} }} }}"
ACTIVATE = (
    "mutation($id: ID!) { activateEnvironment(id: $id) "
    "{ pythonPath image version { id number } environment { id status } } }"
)
DIFF = (
    "query($a: ID!, $b: ID!) { libraryDiff(fromVersion: $a, toVersion: $b) "
    "{ changes { name manager kind before after } } }"
)

_names = (f"e{n}" for n in itertools.count(1000))


def short_name() -> str:
    """A short name no other test uses (tests share one server per backend)."""
    return next(_names)


async def create(client: Client, **fields: Any) -> dict[str, Any]:
    data = {"shortName": short_name(), "fullName": "Test environment", "pythonVersion": "3.11"}
    data.update(fields)
    env: dict[str, Any] = (await client(CREATE, i=data))["createEnvironment"]
    return env


async def get(client: Client, env_id: str) -> dict[str, Any]:
    env: dict[str, Any] = (await client(GET, id=env_id))["environment"]
    return env


async def wait_built(client: Client, env_id: str, timeout: float = 120) -> dict[str, Any]:
    """Poll until the environment leaves IN_PROGRESS."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        env = await get(client, env_id)
        if env["status"] != "IN_PROGRESS":
            return env
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"environment {env_id} still building: {env}")
        await asyncio.sleep(0.05)


async def build(client: Client, env_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build, follow the log over WebSocket to its end; returns (environment, log lines)."""
    version = (await client(BUILD, id=env_id))["buildEnvironment"]
    lines = await collect_log(client, version["id"])
    return await wait_built(client, env_id), lines


async def revert(client: Client, env_id: str, number: int) -> dict[str, Any]:
    version = (await client(REVERT, id=env_id, v=number))["revertEnvironment"]
    await collect_log(client, version["id"])
    return await wait_built(client, env_id)
