"""Copy to Local and Copy to Dataflow: `envyard kernel ...` against a real server.

The commands run as a notebook server would run them (a child process with ENVYARD_URL,
ENVYARD_TOKEN and JUPYTER_DATA_DIR), against a standalone server, the tests' package index
(which also serves ipykernel and what it needs) and conda channel. Kernels are started with
jupyter_client's KernelManager and run code that imports the packages.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from tests.support.client import Client
from tests.support.index import Dist, serve_index, write_index
from tests.support.ops import (
    ACTIVATE,
    APPROVE,
    GET,
    SUBMIT,
    UPDATE,
    build,
    create,
    wait_built,
)
from tests.support.server import Server, base_env, free_port, run_server
from tests.support.wheelhouse import wheelhouse

pytestmark = pytest.mark.e2e

VERSIONS = "import json, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in %r}))"


@pytest.fixture(scope="module")
def standalone(
    tmp_path_factory: pytest.TempPathFactory, index_url: str, conda_channel_url: str
) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("kernels-server")
    env = base_env(data, f"sqlite://{data}/envyard.db", index_url, conda_channel_url)
    with run_server(env) as server:
        yield server


_tokens: dict[str, str] = {}


def token(server: Server, org: str, username: str) -> str:
    """A user's token (made once per module's server)."""
    if username not in _tokens:
        _tokens[username] = server.add_user(org, username)
    return _tokens[username]


@dataclass
class Notebook:
    """A notebook server's side: its environment variables and Jupyter data directory."""

    env: dict[str, str]
    jupyter: Path
    client: Client

    async def envyard(self, *args: str, **overrides: str) -> tuple[int, str, str]:
        env = {**self.env, **overrides}
        env = {k: v for k, v in env.items() if v != ""}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "kernel", *args, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def ok(self, *args: str, **overrides: str) -> tuple[str, str]:
        code, out, err = await self.envyard(*args, **overrides)
        assert code == 0, err
        return out.strip(), err

    async def fails(self, *args: str, **overrides: str) -> str:
        """The one line a failing command says (exit status 1, no traceback)."""
        code, _, err = await self.envyard(*args, **overrides)
        assert code == 1 and "Traceback" not in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("envyard: "), err
        return last


@pytest.fixture
async def notebook(
    standalone: Server,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    jupyter = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(jupyter))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVYARD_", "JUPYTER"))}
    env.update(
        ENVYARD_URL=standalone.http_url,
        ENVYARD_TOKEN=standalone.admin_token,
        ENVYARD_INDEX_URL=standalone.env["ENVYARD_INDEX_URL"],
        ENVYARD_CONDA_CHANNELS=standalone.env["ENVYARD_CONDA_CHANNELS"],
        ENVYARD_KERNEL_DATA_DIR=str(tmp_path / "envyard"),
        JUPYTER_DATA_DIR=str(jupyter),
        UV_CACHE_DIR=str(tmp_path_factory.getbasetemp() / "kernels-uv-cache"),
    )
    client = Client(standalone.http_url, standalone.ws_url, standalone.admin_token)
    yield Notebook(env, jupyter, client)
    await client.aclose()


async def in_kernel(name: str, code: str) -> Any:
    """What `code` prints (JSON) in a running kernel of that name (jupyter_client's own
    KernelManager, in this event loop)."""
    from jupyter_client.manager import AsyncKernelManager

    manager = AsyncKernelManager(kernel_name=name)
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    out: list[str] = []

    def hook(message: dict[str, Any]) -> None:
        if message["msg_type"] == "stream":
            out.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            out.append("\n".join(message["content"]["traceback"]))

    try:
        await client.wait_for_ready(timeout=90)
        reply = await client.execute_interactive(code, output_hook=hook, timeout=90)
        assert reply["content"]["status"] == "ok", "".join(out)
        return json.loads("".join(out))
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def kernel_json(notebook: Notebook, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        (notebook.jupyter / "kernels" / name / "kernel.json").read_text()
    )
    return spec


async def built(notebook: Notebook, **fields: Any) -> dict[str, Any]:
    env = await create(notebook.client, **fields)
    env, lines = await build(notebook.client, env["id"])
    assert env["status"] == "DRAFT", lines[-1]
    return env


def recorded(version: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(p["manager"], p["name"]): p["version"] for p in version["packages"]}


async def test_copy_to_local_runs_a_kernel_with_the_recorded_versions(notebook: Notebook) -> None:
    env = await built(notebook, pipLibraries=["yard-alpha==1.0", "yard-beta"])
    name, err = await notebook.ok("copy-to-local", env["shortName"])
    assert name == f"{env['shortName']}-v1"
    assert "checked against their recorded sha256" in err
    code, _, err = await notebook.envyard(
        "copy-to-local", env["shortName"], "--name", "unverified", "--no-verify-hashes"
    )
    assert code == 0 and "not checked against their recorded sha256 (--no-verify-hashes)" in err
    spec = kernel_json(notebook, name)
    assert spec["metadata"]["envyard"] == {
        "url": notebook.env["ENVYARD_URL"],
        "organization": "default",
        "shortName": env["shortName"],
        "environmentId": env["id"],
        "version": 1,
        "versionId": env["versions"][0]["id"],
        "mode": "copy",
    }
    versions = await in_kernel(name, VERSIONS % ["yard-alpha", "yard-beta"])
    assert versions == {"yard-alpha": "1.0", "yard-beta": "1.0"}
    # The same name again is refused, unless forced.
    code, _, err = await notebook.envyard("copy-to-local", env["shortName"])
    assert code == 1 and f"a kernel named '{name}' exists already" in err, err
    old = Path(spec["argv"][0]).parent.parent
    _, err = await notebook.ok(
        "copy-to-local", env["shortName"], "--force", "--display-name", "Mine"
    )
    spec = kernel_json(notebook, name)
    assert spec["display_name"] == "Mine"
    # A new copy in a directory of its own; the old one removed once the kernel runs the new.
    new = Path(spec["argv"][0]).parent.parent
    assert new != old and new.is_dir() and not old.exists()
    assert f"Removed the previous copy {old}" in err
    assert await in_kernel(name, VERSIONS % ["yard-beta"]) == {"yard-beta": "1.0"}
    # Under a prefix instead of the user's Jupyter data directory.
    prefix = notebook.jupyter.parent / "prefix"
    await notebook.ok("copy-to-local", env["shortName"], "--prefix", str(prefix), "--name", "p1")
    assert (prefix / "share" / "jupyter" / "kernels" / "p1" / "kernel.json").is_file()
    assert not (notebook.jupyter / "kernels" / "p1").exists()


async def test_copy_to_local_of_a_conda_environment(notebook: Notebook) -> None:
    env = await built(
        notebook, condaLibraries=["yardc-alpha==1.0", "yardc-tool"], pipLibraries=["yard-alpha"]
    )
    name, _ = await notebook.ok("copy-to-local", env["shortName"], "--name", "with-conda")
    probe = (
        "import json, subprocess, sys, yardc_alpha, yard_alpha; print(json.dumps(["
        "yardc_alpha.__version__, yard_alpha.__version__, sys.version.split()[0], "
        "subprocess.run(['yardc-tool'], capture_output=True, text=True).stdout.strip()]))"
    )
    python = recorded(env["versions"][0])[("CONDA", "python")]
    assert await in_kernel(name, probe) == ["1.0", "2.0", python, "yardc-tool 1.0"]


async def test_an_older_version_and_the_list_say_which_is_active(notebook: Notebook) -> None:
    env = await built(notebook, pipLibraries=["yard-alpha==1.0"])
    await notebook.client(UPDATE, id=env["id"], i={"pipLibraries": ["yard-alpha==2.0"]})
    env, _ = await build(notebook.client, env["id"])
    old, _ = await notebook.ok("copy-to-local", env["shortName"], "--version", "1")
    new, _ = await notebook.ok("copy-to-local", env["shortName"])
    assert (await in_kernel(old, VERSIONS % ["yard-alpha"])) == {"yard-alpha": "1.0"}
    assert (await in_kernel(new, VERSIONS % ["yard-alpha"])) == {"yard-alpha": "2.0"}
    listing, _ = await notebook.ok("list")
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.splitlines()}
    short = env["shortName"]
    assert rows[old][2] == f"envyard default/{short} v1 (copy), not active (active: v2)"
    assert rows[new][2] == f"envyard default/{short} v2 (copy), active"


async def test_copy_to_dataflow_of_a_kernel_made_here(notebook: Notebook, tmp_path: Path) -> None:
    venv = tmp_path / "mine"
    uv, index = find_uv_bin(), notebook.env["ENVYARD_INDEX_URL"]
    for command in (
        [uv, "venv", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url", index,
         "yard-alpha==1.0", "yard-pkg1", "ipykernel"],
        # yard-beta needs yard-alpha>=1.0: the 1.0 installed is kept, pinned (the index's
        # latest is 2.0), although it is no longer a leaf.
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--index-url", index,
         "yard-beta"],
        # A URL install: envyard's grammar cannot say it; it is listed as left out.
        [uv, "pip", "install", "--python", str(venv / "bin" / "python"),
         index.removesuffix("simple/") + "files/yard_pkg2-1.0-py3-none-any.whl"],
    ):  # fmt: skip
        proc = await asyncio.create_subprocess_exec(*command, env=notebook.env, stderr=PIPE)
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(venv / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                         "{connection_file}"],
                "display_name": "My analysis",
                "language": "python",
            }
        )
    )  # fmt: skip
    KernelSpecManager().install_kernel_spec(str(spec_dir), "mine", user=True)

    env_id, err = await notebook.ok("copy-to-dataflow", "mine", "--short-name", "mine1", "--build")
    assert "left out: pip ipykernel" in err, err
    assert "left out: pip yard-pkg2 1.0: installed from a URL" in err, err
    env = await wait_built(notebook.client, env_id)
    assert env["status"] == "DRAFT", env["versions"][-1]["log"]
    assert env["pythonVersion"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert sorted(env["pipLibraries"]) == ["yard-alpha==1.0", "yard-beta==1.0", "yard-pkg1==1.0"]
    assert env["fullName"] == "My analysis (from kernel mine)"
    built_packages = {
        name: version for (manager, name), version in recorded(env["versions"][0]).items()
    }
    assert built_packages == {"yard-alpha": "1.0", "yard-beta": "1.0", "yard-pkg1": "1.0"}
    # Every installed distribution is a library or said to be left out, with why.
    python = str(venv / "bin" / "python")
    proc = await asyncio.create_subprocess_exec(
        python, "-I", "-c", "import json, importlib.metadata as m; print(json.dumps(["
        "d.metadata['Name'] for d in m.distributions()]))", stdout=PIPE
    )  # fmt: skip
    installed = json.loads((await proc.communicate())[0])
    said = {line.split()[3] for line in err.splitlines() if line.startswith("left out: pip ")}
    assert said | set(built_packages) == set(installed), err


async def test_round_trip_keeps_every_version(notebook: Notebook) -> None:
    env = await built(notebook, pipLibraries=["yard-alpha==1.0", "yard-beta"])
    name, _ = await notebook.ok("copy-to-local", env["shortName"])
    python = kernel_json(notebook, name)["argv"][0]
    proc = await asyncio.create_subprocess_exec(
        find_uv_bin(), "pip", "install", "--python", python, "--index-url",
        notebook.env["ENVYARD_INDEX_URL"], "yard-pkg3", env=notebook.env, stderr=PIPE,
    )  # fmt: skip
    assert await proc.wait() == 0
    env_id, err = await notebook.ok("copy-to-dataflow", name, "--short-name", "trip1", "--build")
    assert (
        f"came from {env['shortName']} version 1 (default); changed since: added yard-pkg3 1.0"
    ) in err, err
    # The same kernel seen through another address of envyard: its ids are not compared.
    other = notebook.env["ENVYARD_URL"].replace("127.0.0.1", "localhost")
    _, err = await notebook.ok("copy-to-dataflow", name, "--short-name", "trip2", "--url", other)
    assert "of another envyard" in err and "changed since" not in err, err
    again = await wait_built(notebook.client, env_id)
    assert again["status"] == "DRAFT"
    before = recorded(env["versions"][0])
    after = recorded(again["versions"][0])
    assert after == {**before, ("PIP", "yard-pkg3"): "1.0"}


async def test_activate_runs_the_version_in_place(notebook: Notebook) -> None:
    env = await built(notebook, pipLibraries=["yard-alpha==2.0"])
    name, err = await notebook.ok("activate", env["shortName"])
    activation = (await notebook.client(ACTIVATE, id=env["id"]))["activateEnvironment"]
    spec = kernel_json(notebook, name)
    assert spec["argv"][0] == activation["pythonPath"]  # no copy: the version itself
    assert spec["metadata"]["envyard"]["mode"] == "in-place"
    assert "has no ipykernel" in err
    said = await notebook.fails("activate", env["shortName"])
    assert f"a kernel named '{name}' exists already" in said
    probe = (
        "import json, sys, yard_alpha; print(json.dumps([sys.executable, yard_alpha.__version__]))"
    )
    assert await in_kernel(name, probe) == [activation["pythonPath"], "2.0"]
    # The environment itself is unchanged: ipykernel lives beside it.
    env_after = (await notebook.client(GET, id=env["id"]))["environment"]
    assert env_after["versions"][0]["packages"] == env["versions"][0]["packages"]
    proc = await asyncio.create_subprocess_exec(activation["pythonPath"], "-c", "import ipykernel")
    assert await proc.wait() != 0


async def test_clear_errors(notebook: Notebook, tmp_path: Path) -> None:
    code, _, err = await notebook.envyard("copy-to-local", "nope", ENVYARD_TOKEN="")
    assert (code, err.strip()) == (1, "envyard: no API token: set ENVYARD_TOKEN or pass --token")
    code, _, err = await notebook.envyard("copy-to-local", "zzzzz")
    assert code == 1
    assert "no environment 'zzzzz' that you may use in organization 'default'" in err
    saved = await create(notebook.client, pipLibraries=["yard-alpha"])
    said = await notebook.fails("copy-to-local", saved["shortName"])
    assert said == (
        f"envyard: {saved['shortName']} has no version you may use (status SAVED): This "
        "environment has never been built; build it first."
    )
    for bad in ("Bad Name", "..", ".hidden", "a/b"):
        code, _, err = await notebook.envyard("copy-to-local", saved["shortName"], "--name", bad)
        assert code == 1 and "cannot be a kernel name" in err, (bad, err)
    code, _, err = await notebook.envyard("copy-to-local", saved["shortName"], "--token", "ey_x")
    assert code == 1 and "envyard:" in err and "Traceback" not in err
    # A kernel whose interpreter is gone.
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "kernel.json").write_text(
        json.dumps({"argv": [str(tmp_path / "no" / "python"), "-m", "ipykernel_launcher"],
                    "display_name": "Gone", "language": "python"})
    )  # fmt: skip
    from jupyter_client.kernelspec import KernelSpecManager

    KernelSpecManager().install_kernel_spec(str(gone), "gone", user=True)
    said = await notebook.fails("copy-to-dataflow", "gone", "--short-name", "gone1")
    assert said.endswith(f"interpreter {tmp_path / 'no' / 'python'} does not exist any more")
    listing, _ = await notebook.ok("list")
    assert "[interpreter gone]" in listing


async def test_a_bare_python_kernel_is_the_notebook_servers_own(
    notebook: Notebook, tmp_path: Path
) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = tmp_path / "bare"
    spec_dir.mkdir()
    (spec_dir / "kernel.json").write_text(
        json.dumps({"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3", "language": "python"})
    )  # fmt: skip
    KernelSpecManager().install_kernel_spec(str(spec_dir), "bare", user=True)
    env_id, err = await notebook.ok("copy-to-dataflow", "bare", "--short-name", "bare1")
    # The interpreter running the command: this test environment, made by pip, where
    # envyard itself is an editable install (not expressible).
    assert "left out: pip envyard " in err and "an editable install of file://" in err, err
    env = (await notebook.client(GET, id=env_id))["environment"]
    assert env["status"] == "SAVED"
    assert env["pythonVersion"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    # Its other packages came with envyard (pip's REQUESTED marker says so): none is a library.
    assert env["pipLibraries"] == []


async def test_others_get_the_published_version(notebook: Notebook, standalone: Server) -> None:
    """Someone else of the organization copies, activates and lists the version activation
    gives them (the published one), not the creator's latest."""
    env = await built(notebook, pipLibraries=["yard-alpha==1.0"])
    await notebook.client(SUBMIT, id=env["id"])
    await notebook.client(APPROVE, id=env["id"])
    await notebook.client(UPDATE, id=env["id"], i={"pipLibraries": ["yard-alpha==2.0"]})
    env, _ = await build(notebook.client, env["id"])
    assert (env["status"], env["publishedVersion"]["number"]) == ("DRAFT", 1)
    short = env["shortName"]
    kim = token(standalone, "default", "kim")

    name, err = await notebook.ok("copy-to-local", short, ENVYARD_TOKEN=kim)
    assert name == f"{short}-v1" and "(the one activation gives you)" in err, err
    assert await in_kernel(name, VERSIONS % ["yard-alpha"]) == {"yard-alpha": "1.0"}
    mine, _ = await notebook.ok("copy-to-local", short)  # the creator's: their latest
    assert mine == f"{short}-v2"
    in_place, _ = await notebook.ok("activate", short, ENVYARD_TOKEN=kim)
    assert kernel_json(notebook, in_place)["metadata"]["envyard"]["version"] == 1

    def states(listing: str) -> dict[str, str]:
        return {line.split("\t")[0]: line.split("\t")[2] for line in listing.splitlines()}

    as_kim = states((await notebook.ok("list", ENVYARD_TOKEN=kim))[0])
    assert as_kim[name] == f"envyard default/{short} v1 (copy), active"
    assert as_kim[in_place] == f"envyard default/{short} v1 (in-place), active"
    assert as_kim[mine] == f"envyard default/{short} v2 (copy), not active (active: v1)"
    as_creator = states((await notebook.ok("list"))[0])
    assert as_creator[name] == f"envyard default/{short} v1 (copy), not active (active: v2)"
    assert as_creator[mine] == f"envyard default/{short} v2 (copy), active"


async def test_list_matches_kernels_by_environment(notebook: Notebook, standalone: Server) -> None:
    """A kernel is of its environment (envyard, organization, id), not of a short name."""
    draft = await built(notebook, pipLibraries=["yard-pkg4"])
    name, _ = await notebook.ok("copy-to-local", draft["shortName"])
    kim = token(standalone, "default", "kim")
    rows = (await notebook.ok("list", ENVYARD_TOKEN=kim))[0].splitlines()
    row = next(line.split("\t")[2] for line in rows if line.startswith(f"{name}\t"))
    assert row.endswith(", no longer visible"), row  # the creator's draft: not kim's to see
    # The same envyard under another address: its ids are not taken for this one's.
    other_url = notebook.env["ENVYARD_URL"].replace("127.0.0.1", "localhost")
    rows = (await notebook.ok("list", ENVYARD_URL=other_url))[0].splitlines()
    row = next(line.split("\t")[2] for line in rows if line.startswith(f"{name}\t"))
    assert row.endswith(f", unknown (from another envyard, {notebook.env['ENVYARD_URL']})"), row
    said = await notebook.fails("copy-to-local", draft["shortName"], ENVYARD_TOKEN=kim)
    assert said == (
        f"envyard: no environment {draft['shortName']!r} that you may use in organization 'default'"
    )
    # Another organization: its user neither sees the environment nor compares kernels.
    other = token(standalone, "acme", "olga")
    said = await notebook.fails("copy-to-local", draft["shortName"], ENVYARD_TOKEN=other)
    assert said.endswith("that you may use in organization 'acme'")
    rows = (await notebook.ok("list", ENVYARD_TOKEN=other))[0].splitlines()
    row = next(line.split("\t")[2] for line in rows if line.startswith(f"{name}\t"))
    assert row.endswith(", unknown (not your organization, acme)"), row
    # Its version id means nothing to that organization: not compared, still copied.
    _, err = await notebook.ok(
        "copy-to-dataflow", name, "--short-name", "olga1", ENVYARD_TOKEN=other
    )
    assert f"came from {draft['shortName']} version 1 (" in err and "changed since" not in err


async def test_one_line_errors(notebook: Notebook) -> None:
    url = f"http://127.0.0.1:{free_port()}/graphql"
    said = await notebook.fails("copy-to-local", "anything", ENVYARD_URL=url)
    assert said.startswith(f"envyard: envyard at {url} is not reachable: "), said
    _, err = await notebook.ok("list", ENVYARD_URL=url)
    assert "is not reachable" in err
    said = await notebook.fails("activate", "anything", ENVYARD_TOKEN="ey_not-a-real-token")
    assert "Traceback" not in said


# Other files for yard-alpha 1.0 and yard-beta 1.0 (a changed METADATA: other bytes, other
# sha256) than the ones their versions recorded.
TAMPERED = [
    Dist("yard-alpha", "1.0", extras={"tampered": []}),
    Dist("yard-beta", "1.0", requires=["yard-alpha>=1.0"], extras={"tampered": []}),
]


async def test_a_failed_copy_leaves_the_old_kernel_working(
    notebook: Notebook, tmp_path: Path
) -> None:
    env = await built(notebook, pipLibraries=["yard-alpha==1.0", "yard-beta"])
    name, _ = await notebook.ok("copy-to-local", env["shortName"])
    before = kernel_json(notebook, name)
    environments = tmp_path / "envyard" / "environments"
    copies = sorted(environments.iterdir())
    with serve_index(write_index(tmp_path / "tampered", TAMPERED, wheelhouse())) as index:
        said = await notebook.fails(
            "copy-to-local", env["shortName"], "--force", "--index-url", index
        )
        assert said.startswith(
            "envyard: the copy failed: uv pip install failed: Hash mismatch for `yard-"
        ), said
        assert said.endswith(
            f"the package index {index} serves other files than the ones the version "
            "recorded (--no-verify-hashes takes them unchecked)"
        ), said
        # Not checking the hashes is asked for by name: then the other files go in.
        await notebook.ok(
            "copy-to-local", env["shortName"], "--name", "other", "--index-url", index,
            "--no-verify-hashes",
        )  # fmt: skip
    assert kernel_json(notebook, name) == before
    assert sorted(environments.iterdir()) == sorted(
        [*copies, Path(kernel_json(notebook, "other")["argv"][0]).parent.parent]
    )
    versions = await in_kernel(name, VERSIONS % ["yard-alpha", "yard-beta"])
    assert versions == {"yard-alpha": "1.0", "yard-beta": "1.0"}


async def test_ipykernel_never_replaces_condas_packages(notebook: Notebook, tmp_path: Path) -> None:
    """An index whose only ipykernel needs a newer yardc-alpha than the conda package of the
    environment has: the copy is refused, saying so, and leaves nothing behind."""
    env = await built(notebook, condaLibraries=["yardc-alpha==1.0"])
    root = write_index(
        tmp_path / "index",
        [Dist("ipykernel", "99.0", requires=["yardc-alpha>=2"]), Dist("yardc-alpha", "2.0")],
    )
    environments = tmp_path / "envyard" / "environments"
    with serve_index(root) as index:
        said = await notebook.fails(
            "copy-to-local", env["shortName"], "--name", "refused", "--index-url", index
        )
    assert said == (
        "envyard: the copy failed: ipykernel needs yardc-alpha (conda's is 1.0) other than "
        "conda's: refused, since it would replace conda's files (add ipykernel to the "
        "environment's conda libraries instead)"
    )
    assert list(environments.iterdir()) == []
    assert not (notebook.jupyter / "kernels" / "refused").exists()
