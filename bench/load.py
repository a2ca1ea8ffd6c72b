"""Load: 50 concurrent clients against one `envyard serve`, for 20 s per request kind.

Run: .venv/bin/python bench/load.py   (prints figures; asserts nothing)

Each client keeps one HTTP/1.1 connection and sends its next request as soon as the last
answer is read (a closed loop), with a minimal client written on asyncio streams so that the
client process costs less than the server. Printed for each kind: requests per second,
p50 and p99 latency, errors. Kinds:
- `GET /health`, a bare Starlette JSON endpoint on the same server: the physical baseline
  (the event loop, HTTP parsing and a JSON body, nothing of envyard's);
- `{ me }` over GraphQL: authentication (a token lookup) and the smallest operation;
- a 50-environment page of `environments(first: 50)` with creators, latest versions and
  their package names, in a database of 10,000 environments.
The database holds 10,000 environments of 3 versions of 30 packages (tests/support/
population.py). BENCH_SECONDS (default 20), BENCH_CLIENTS (default 50), BENCH_BACKENDS
(default "sqlite postgres").
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tortoise.backends.base.executor import EXECUTOR_CACHE  # noqa: E402

from app.services.runtime import database  # noqa: E402
from app.services.users import add_user  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import print_backends  # noqa: E402
from tests.support.population import populate  # noqa: E402
from tests.support.server import base_env, database_url, run_server  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite postgres").split()

PAGE = """{ environments(first: 50) { id shortName status creator { username }
  latestVersion { number packages { name version } } } }"""


def graphql_request(port: int, token: str, query: str) -> bytes:
    body = json.dumps({"query": query}).encode()
    return (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def get_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


async def client(
    port: int, request: bytes, until: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != b"200" or b'"errors"' in body:
                errors.append(body[:200].decode(errors="replace"))
    finally:
        writer.close()


async def load(port: int, request: bytes, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(client(port, request, until, latencies, errors) for _ in range(CLIENTS)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


async def run_backend(backend: str, data_dir: Path) -> list[str]:
    lines: list[str] = []
    for url in database_url(backend, data_dir):
        EXECUTOR_CACHE.clear()
        settings = Settings.from_env(
            {"ENVYARD_DATA_DIR": str(data_dir / "data"), "ENVYARD_DATABASE_URL": url}
        )
        async with database(settings):
            _, token = await add_user("load", "admin", admin=True)
            members = [(await add_user("load", f"m{i}", admin=False))[0] for i in range(4)]
            await populate(members, 10_000, published=2_000, packages=30, versions=3)
        env = base_env(data_dir / "data", url, "http://127.0.0.1:9/simple")
        with run_server(env) as server:
            port = server.port
            for label, request in (
                ("GET /health (bare Starlette)", get_request(port, "/health")),
                ("{ me }", graphql_request(port, token, "{ me { username } }")),
                ("50-environment page", graphql_request(port, token, PAGE)),
            ):
                await load(port, request, 2.0)  # warm-up: connections, caches, statements
                found = await load(port, request, SECONDS)
                lines.append(
                    f"{backend:8} {label:30} {found['rps']:8.0f} req/s   "
                    f"p50 {found['p50']:7.1f} ms   p99 {found['p99']:7.1f} ms   "
                    f"errors {found['errors']} {found['first_error']}"
                )
    return lines


async def main() -> None:
    await print_backends(
        f"load: {CLIENTS} concurrent clients, {SECONDS:.0f} s per kind, one envyard serve",
        BACKENDS,
        run_backend,
    )


if __name__ == "__main__":
    asyncio.run(main())
