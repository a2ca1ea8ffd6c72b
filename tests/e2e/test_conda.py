"""Conda and pip libraries in one environment, from the tests' own conda channel.

The channel (tests/support/conda.py) holds a repackaged CPython 3.11, yardc-alpha 1.0 and
2.0 (2.0 with an extra `fast` pulling yardc-beta), yardc-beta, yardc-tool (not Python) and
yardc-old (needs yardc-alpha < 2). The standalone deployments build conda prefixes with
py-rattler on this host; the distributed one builds them in Docker images, at
/opt/envyard/conda, with the tools mounted and never committed.
"""

from __future__ import annotations

import asyncio
import json
from asyncio.subprocess import PIPE

import aiodocker
import pytest
import yaml

from tests.support.docker import run_in_image
from tests.support.locks import read_lock
from tests.support.ops import ACTIVATE, DIFF, UPDATE, build, create, revert

pytestmark = pytest.mark.e2e

VERSIONS = (
    "query($id: ID!) { environment(id: $id) { versions { id number status "
    "packages { name version manager } } } }"
)
LOCKS = (
    "query($id: ID!) { version(id: $id) { packages { name version manager } "
    "req: lockfile(format: REQUIREMENTS_TXT) yml: lockfile(format: ENVIRONMENT_YML) "
    "lock: lockfile } }"
)
PROBE = (
    "import json, subprocess, yardc_alpha, yard_alpha; "
    "tool = subprocess.run(['yardc-tool'], capture_output=True, text=True).stdout.strip(); "
    "print(json.dumps([yardc_alpha.__version__, yard_alpha.__version__, tool]))"
)


async def run(python: str, code: str) -> list[str]:
    """What the environment's own interpreter prints (bin/ of the prefix on PATH)."""
    bin_dir = python.rsplit("/", 1)[0]
    proc = await asyncio.create_subprocess_exec(
        python, "-c", code, stdout=PIPE, stderr=PIPE, env={"PATH": f"{bin_dir}:/usr/bin:/bin"}
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result: list[str] = json.loads(out)
    return result


async def probe(activation: dict[str, str]) -> list[str]:
    """What the activated environment imports: its python on this host, or its image."""
    if activation["pythonPath"]:
        return await run(activation["pythonPath"], PROBE)
    result: list[str] = json.loads(await run_in_image(activation["image"], "python", "-c", PROBE))
    return result


async def image_holds_only_the_environment(image: str) -> None:
    """No build tools, requests or a left-behind venv in a conda environment's image."""
    listing = await run_in_image(
        image,
        "python",
        "-c",
        "import os; print(sorted(os.listdir('/opt/envyard')), "
        "os.path.exists('/envyard'), os.listdir('/mnt'), os.listdir('/media'))",
    )
    assert listing.strip() == "['conda'] False [] []", listing
    async with aiodocker.Docker() as docker:
        env = (await docker.images.inspect(image))["Config"]["Env"]
    # Only the environment's own variables: nothing the build told uv or rattler.
    assert sorted(v.split("=", 1)[0] for v in env) == [
        "CONDA_PREFIX", "LANG", "PATH", "VIRTUAL_ENV"
    ], env  # fmt: skip
    assert "VIRTUAL_ENV=" in env and "CONDA_PREFIX=/opt/envyard/conda" in env


def managed(packages: list[dict[str, str]]) -> dict[tuple[str, str], str]:
    return {(p["manager"], p["name"]): p["version"] for p in packages}


async def test_conda_and_pip_in_one_environment(server, people):
    alice = people.alice
    env = await create(
        alice,
        condaLibraries=["yardc-alpha==1.0", "yardc-tool"],
        pipLibraries=["yard-alpha==1.0"],
    )
    env, lines = await build(alice, env["id"])
    texts = [line["text"] for line in lines]
    assert env["status"] == "DRAFT", "\n".join(texts)
    assert any(t.startswith("Solving ") for t in texts)
    assert any(t.startswith("Linking ") for t in texts)
    first = env["versions"][0]
    installed = managed(first["packages"])
    assert installed[("CONDA", "yardc-alpha")] == "1.0"
    assert installed[("CONDA", "python")].startswith("3.11.")
    assert installed[("CONDA", "yardc-tool")] == "1.0"
    assert installed[("PIP", "yard-alpha")] == "1.0"
    # A distribution conda put there is never reported as pip's.
    assert ("PIP", "yardc-alpha") not in installed and ("PIP", "yardc_alpha") not in installed

    activation = (await alice(ACTIVATE, id=env["id"]))["activateEnvironment"]
    assert await probe(activation) == ["1.0", "1.0", "yardc-tool 1.0"]
    if activation["image"]:
        await image_holds_only_the_environment(activation["image"])

    # Version 2: the conda package upgraded, a pip one added, on top of version 1.
    await alice(
        UPDATE,
        id=env["id"],
        i={"condaLibraries": ["yardc-alpha>=2", "yardc-tool"], "pipLibraries": ["yard-beta"]},
    )
    env, _ = await build(alice, env["id"])
    assert env["status"] == "DRAFT"
    second = env["versions"][1]
    changes = (await alice(DIFF, a=first["id"], b=second["id"]))["libraryDiff"]["changes"]
    kinds = {(c["manager"], c["name"]): c["kind"] for c in changes}
    assert kinds[("CONDA", "yardc-alpha")] == "UPGRADED"
    assert kinds[("PIP", "yard-beta")] == "ADDED"
    assert ("PIP", "yard-alpha") not in kinds  # kept from version 1
    activation2 = (await alice(ACTIVATE, id=env["id"]))["activateEnvironment"]
    assert activation2 != activation
    assert await probe(activation2) == ["2.0", "1.0", "yardc-tool 1.0"]

    # Lock files list exactly the recorded packages.
    locks = (await alice(LOCKS, id=second["id"]))["version"]
    recorded = managed(locks["packages"])
    pip = sorted(f"{n}=={v}" for (m, n), v in recorded.items() if m == "PIP")
    assert sorted(locks["req"].splitlines()) == pip
    yml = yaml.safe_load(locks["yml"])
    conda_pins = {d.split("=")[0]: d.split("=")[1] for d in yml["dependencies"][:-1]}
    assert conda_pins == {n: v for (m, n), v in recorded.items() if m == "CONDA"}
    assert sorted(yml["dependencies"][-1]["pip"]) == pip
    assert yml["channels"] == [server.env["ENVYARD_CONDA_CHANNELS"]]
    lock = read_lock(locks["lock"])
    assert {(p["kind"], p["name"], p["version"]) for p in lock["packages"]} == {
        ("conda" if m == "CONDA" else "pypi", n, v) for (m, n), v in recorded.items()
    }
    # Where each file is: the channel's package, the index's wheel with its hash.
    channel = server.env["ENVYARD_CONDA_CHANNELS"].rstrip("/")
    for package in lock["packages"]:
        if package["kind"] == "conda":
            assert package["location"].startswith(channel + "/"), package
        else:
            host = server.env["ENVYARD_INDEX_URL"].removesuffix("simple/")
            assert package["location"].startswith(host + "files/"), package
            assert ".whl#sha256=" in package["location"], package

    # Revert reuses version 1's prefix.
    reverted = await revert(alice, env["id"], 1)
    assert reverted["status"] == "DRAFT"
    assert managed(reverted["versions"][2]["packages"]) == installed
    activation3 = (await alice(ACTIVATE, id=env["id"]))["activateEnvironment"]
    if activation["pythonPath"]:  # the reverted-to prefix itself
        assert activation3["pythonPath"] == activation["pythonPath"]
    assert await probe(activation3) == ["1.0", "1.0", "yardc-tool 1.0"]


async def test_pip_never_replaces_a_conda_package(server, people):
    env = await create(
        people.alice, condaLibraries=["yardc-alpha==1.0"], pipLibraries=["yardc-alpha==2.0"]
    )
    env, lines = await build(people.alice, env["id"])
    assert env["status"] == "FAILED"
    assert lines[-1]["text"] == (
        "Build failed: yardc-alpha==2.0 would replace yardc-alpha 1.0, which conda installed: "
        "pip never replaces a conda package; change the conda library instead"
    ), lines[-1]


@pytest.mark.parametrize(
    ("conda", "says"),
    [
        (["yardc-nope"], "No candidates were found for yardc-nope"),
        (["yardc-old", "yardc-alpha>=2"], "yardc-old, yardc-alpha>=2 cannot be installed together"),
        (["yardc-alpha[turbo]>=2"], "yardc-alpha 2.0 has no extra 'turbo' (its extras: fast)"),
    ],
)
async def test_failed_solves_name_the_packages(server, people, conda, says):
    env = await create(people.alice, condaLibraries=conda)
    env, lines = await build(people.alice, env["id"])
    assert env["status"] == "FAILED"
    last = lines[-1]["text"]
    assert last.startswith("Build failed: conda install failed: ") and says in last, last


async def test_conda_extras_are_optional_dependencies(server, people):
    env = await create(people.alice, condaLibraries=["yardc-alpha[fast]>=2"])
    env, lines = await build(people.alice, env["id"])
    assert env["status"] == "DRAFT", lines[-1]
    installed = managed(env["versions"][0]["packages"])
    assert installed[("CONDA", "yardc-alpha")] == "2.0"
    assert installed[("CONDA", "yardc-beta")] == "1.0"  # what the extra `fast` brings


async def test_a_conda_library_never_replaces_a_pip_package(server, people):
    alice = people.alice
    env = await create(alice, condaLibraries=["yardc-tool"], pipLibraries=["yardc-alpha==2.0"])
    env, lines = await build(alice, env["id"])
    assert env["status"] == "DRAFT", lines[-1]
    await alice(UPDATE, id=env["id"], i={"condaLibraries": ["yardc-tool", "yardc-alpha==1.0"]})
    env, lines = await build(alice, env["id"])
    assert env["status"] == "FAILED"
    assert lines[-1]["text"] == (
        "Build failed: conda's yardc-alpha 1.0 would replace yardc-alpha 2.0, which pip "
        "installed: a package is either conda's or pip's; drop the pip library or the conda one"
    ), lines[-1]
