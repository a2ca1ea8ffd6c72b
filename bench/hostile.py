"""Another client's latency while hostile requests arrive, with and without envyard's bounds.

Run: .venv/bin/python bench/hostile.py   (prints figures; asserts nothing)

A real `envyard serve` (standalone, SQLite) answers `{ me }` for one client every 50 ms while
three anonymous clients send, in a loop, either 5 MB bodies or 1,249-field documents. The same
run measures a server whose bounds are lifted (ENVYARD_MAX_BODY_BYTES, _QUERY_TOKENS and
_QUERY_SELECTIONS set very high), which behaves as envyard did before it had them, and the
quiet baseline with no attackers. BENCH_SECONDS sets each phase's length (default 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import base_env, run_server  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
BIG = b'{"query": "{ me { id } }", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
MANY = json.dumps({"query": "{" + " me { id }" * 1249 + "}"}).encode()
JSON = {"content-type": "application/json"}
UNBOUNDED = {
    "ENVYARD_MAX_BODY_BYTES": str(64 * 1024 * 1024),
    "ENVYARD_MAX_QUERY_TOKENS": "1000000",
    "ENVYARD_MAX_QUERY_SELECTIONS": "1000000",
}


async def phase(url: str, token: str, attack: bytes | None) -> tuple[list[float], list[float]]:
    """(latencies of `{ me }`, times the server took to answer each hostile request)."""
    deadline = time.monotonic() + SECONDS
    answered: list[float] = []

    async def attacker() -> None:
        assert attack is not None
        async with httpx.AsyncClient(timeout=60) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                with contextlib.suppress(httpx.TransportError):  # closed before the upload ended
                    await http.post(url, content=attack, headers=JSON)
                answered.append(time.monotonic() - started)

    async def victim() -> list[float]:
        latencies = []
        async with httpx.AsyncClient(timeout=60) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await http.post(
                    url,
                    json={"query": "{ me { username } }"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.json()["data"]["me"]["username"] == "admin", response.text
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.05)
        return latencies

    attackers = [attacker() for _ in range(3)] if attack is not None else []
    *_, latencies = await asyncio.gather(*attackers, victim())
    return latencies, answered


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(values):4d}  p50 {statistics.median(values) * 1000:7.1f} ms  "
        f"p99 {p99 * 1000:7.1f} ms  max {ordered[-1] * 1000:7.1f} ms"
    )


async def measure(label: str, extra: dict[str, str], index_url: str) -> None:
    with tempfile.TemporaryDirectory() as data:
        env = {**base_env(Path(data), f"sqlite://{data}/envyard.db", index_url), **extra}
        with run_server(env) as server:
            for name, attack in [("quiet", None), ("5 MB bodies", BIG), ("1,249 fields", MANY)]:
                latencies, answered = await phase(server.http_url, server.admin_token, attack)
                print(f"{label:10s} {name:13s} {{ me }}: {summary(latencies)}")
                if answered:
                    print(f"{'':10s} {'':13s} hostile: {summary(answered)}")


async def main() -> None:
    print(f"3 hostile clients against 1 client asking {{ me }} every 50 ms, {SECONDS:g} s each")
    # No build runs: the index is never asked.
    await measure("bounded", {}, "http://127.0.0.1:9/simple/")
    await measure("unbounded", UNBOUNDED, "http://127.0.0.1:9/simple/")


if __name__ == "__main__":
    asyncio.run(main())
