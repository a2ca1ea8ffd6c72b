"""Copy to Local: a 5-package environment as a Jupyter kernel, against doing it by hand.

Run: .venv/bin/python bench/kernels.py   (prints figures; asserts nothing)

With the tests' own index (which serves ipykernel and what it needs, repacked from this
venv) and a standalone server, warm caches:
- `envyard kernel copy-to-local` of a built 5-package environment, then the time until a
  kernel of it answers an execute request;
- the same by hand in the same run: `python -m venv`, `pip install` of the 5 pins and
  ipykernel (pip's cache warm), `python -m ipykernel install`, then the kernel's answer.
BENCH_ROUNDS sets the rounds (default 3).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.client import Client  # noqa: E402
from tests.support.index import CATALOGUE, serve_index, write_index  # noqa: E402
from tests.support.ops import build, create  # noqa: E402
from tests.support.server import base_env, run_server  # noqa: E402
from tests.support.wheelhouse import wheelhouse  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PINS = [f"yard-pkg{i}==1.0" for i in range(5)]


def answer_time(name: str) -> float:
    """Seconds from starting a kernel to its answer to an execute request."""
    from jupyter_client.manager import start_new_kernel

    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name=name, startup_timeout=90)
    try:
        reply = client.execute_interactive("import yard_pkg0", timeout=90)
        assert reply["content"]["status"] == "ok", reply
        return time.perf_counter() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


async def main() -> None:
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        root = write_index(work / "index", CATALOGUE, wheels=wheelhouse())
        with serve_index(root) as index_url:
            data = work / "data"
            with run_server(base_env(data, f"sqlite://{data}/envyard.db", index_url)) as server:
                client = Client(server.http_url, server.ws_url, server.admin_token)
                env = await create(client, pipLibraries=PINS)
                env, _ = await build(client, env["id"])
                await client.aclose()
                os.environ["JUPYTER_DATA_DIR"] = str(work / "jupyter")
                notebook = {k: v for k, v in os.environ.items() if not k.startswith("ENVYARD_")}
                notebook.update(
                    ENVYARD_URL=server.http_url,
                    ENVYARD_TOKEN=server.admin_token,
                    ENVYARD_INDEX_URL=index_url,
                    ENVYARD_KERNEL_DATA_DIR=str(work / "envyard"),
                    UV_CACHE_DIR=str(work / "uv-cache"),
                    PIP_CACHE_DIR=str(work / "pip-cache"),
                    PIP_DISABLE_PIP_VERSION_CHECK="1",
                )
                copy = [sys.executable, "-m", "app.cli", "kernel", "copy-to-local"]
                copy += [env["shortName"], "--name", "bench", "--force"]
                timed(copy, notebook)  # warms uv's cache
                by_hand_venv = work / "by-hand"
                figures: dict[str, list[float]] = {k: [] for k in ("copy", "k1", "hand", "k2")}
                for round_ in range(ROUNDS + 1):
                    copied = timed(copy, notebook)
                    copied_answer = answer_time("bench")
                    hand = timed([sys.executable, "-m", "venv", "--clear", str(by_hand_venv)], {})
                    pip = [str(by_hand_venv / "bin" / "python"), "-m", "pip", "install"]
                    hand += timed([*pip, "--index-url", index_url, *PINS, "ipykernel"], notebook)
                    hand += timed(
                        [str(by_hand_venv / "bin" / "python"), "-m", "ipykernel", "install",
                         "--user", "--name", "by-hand"],
                        notebook,
                    )  # fmt: skip
                    hand_answer = answer_time("by-hand")
                    if round_:  # the first round warms pip's cache
                        figures["copy"].append(copied)
                        figures["k1"].append(copied_answer)
                        figures["hand"].append(hand)
                        figures["k2"].append(hand_answer)

    def show(label: str, values: list[float]) -> None:
        print(
            f"{label:58s} median {statistics.median(values):6.2f} s  "
            f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
        )

    print("a 5-package environment as a Jupyter kernel, warm caches")
    show("envyard kernel copy-to-local", figures["copy"])
    show("  then until its kernel answers", figures["k1"])
    show("by hand: venv + pip install (+ ipykernel) + ipykernel install", figures["hand"])
    show("  then until its kernel answers", figures["k2"])


if __name__ == "__main__":
    asyncio.run(main())
