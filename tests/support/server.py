"""Real envyard processes for the tests: `envyard serve` under uvicorn, `envyard user add`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = os.environ.get(
    "ENVYARD_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test session; dropped afterwards."""
    name = f"envyard_test_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:
        # Its own thread and loop: callers may be sync fixtures or async tests.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, execute(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(backend: str, data_dir: Path) -> Iterator[str]:
    if backend == "postgres":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite://{data_dir / 'envyard.db'}"


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    env: dict[str, str]
    admin_token: str
    output: list[str]
    mode: str = "standalone"
    peer: Server | None = None  # a second API process of the same deployment
    workers: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def add_user(self, org: str, username: str, admin: bool = False) -> str:
        """`envyard user add`; returns the token printed alone on the last line."""
        args = [sys.executable, "-m", "app.cli", "user", "add", "--org", org, username]
        result = subprocess.run(
            [*args, "--admin"] if admin else args,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def new_token(self, org: str, username: str) -> str:
        """`envyard user token`: the user's new token (the old one stops working)."""
        args = [sys.executable, "-m", "app.cli", "user", "token", "--org", org, username]
        result = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=60, check=True
        )
        return result.stdout.strip().splitlines()[-1]


def base_env(
    data_dir: Path, database: str, index_url: str, conda_channel: str | None = None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVYARD_")}
    env.update(
        ENVYARD_DATA_DIR=str(data_dir),
        ENVYARD_DATABASE_URL=database,
        ENVYARD_INDEX_URL=index_url,
        ENVYARD_BUILD_TIMEOUT="120",
    )
    if conda_channel is not None:
        env["ENVYARD_CONDA_CHANNELS"] = conda_channel
    return env


@contextmanager
def standalone_sqlite(data_dir: Path, index_url: str) -> Iterator[Server]:
    """`envyard serve` on SQLite in `data_dir`, installing from `index_url`."""
    for url in database_url("sqlite", data_dir):
        with run_server(base_env(data_dir, url, index_url)) as server:
            yield server


@contextmanager
def run_server(env: dict[str, str], cwd: Path | None = None) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env={**env, "PYTHONPATH": str(ROOT)} if cwd is not None else env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    token = ""
    assert process.stdout is not None
    try:
        for line in process.stdout:
            output.append(line)
            if line.startswith("ey_"):
                token = line.strip()
            if "GraphiQL at" in line:
                break
        # Keep draining the server's output so a chatty server never blocks on a full pipe.
        threading.Thread(target=output.extend, args=(process.stdout,), daemon=True).start()
        _wait_for_port(port, process, output)
        server = Server(process, port, env, token, output)
        yield server
    finally:
        stop_process(process)


def _wait_for_port(port: int, process: subprocess.Popen[str], output: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("envyard serve exited:\n" + "".join(output))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("envyard serve did not listen in time:\n" + "".join(output))


def distributed_env(env: dict[str, str], image: str) -> dict[str, str]:
    """API and workers sharing PostgreSQL and Redis, building Docker images."""
    return {
        **env,
        "ENVYARD_REDIS_URL": os.environ.get("ENVYARD_TEST_REDIS", "redis://127.0.0.1:6379/0"),
        "ENVYARD_QUEUE_NAME": f"envyard-test-{uuid.uuid4().hex[:12]}",
        "ENVYARD_BUILDER": "docker",
        "ENVYARD_DOCKER_IMAGES": f"python:3.11={image}",
        "ENVYARD_STALE_BUILD_AFTER": "4",
        "ENVYARD_LOG_RETENTION": "3",
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    """`envyard worker`; its output is drained in the background (call stop_process)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lines.extend, args=(process.stdout,), daemon=True).start()
    return process


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 20 s; closes its output pipe."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
