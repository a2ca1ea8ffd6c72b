"""The whole lifecycle of the seed documents, over HTTP and WebSocket, against a real server."""

from __future__ import annotations

import asyncio
import sys
from asyncio.subprocess import PIPE
from typing import Any

import pytest
import yaml

from tests.support.client import collect_log
from tests.support.docker import run_in_image
from tests.support.locks import read_lock
from tests.support.ops import (
    ACTIVATE,
    APPROVE,
    BUILD,
    DIFF,
    GET,
    LIST,
    PENDING,
    REJECT,
    SUBMIT,
    UPDATE,
    build,
    create,
    get,
    revert,
    wait_built,
)

pytestmark = pytest.mark.e2e


def installed(version: dict[str, Any]) -> dict[str, str]:
    """The test packages a version holds (Docker images also hold pip and setuptools)."""
    return {p["name"]: p["version"] for p in version["packages"] if p["name"].startswith("yard-")}


async def imports(activation: dict[str, Any], *modules: str) -> list[str]:
    """Run the activated environment (its interpreter, or a container of its image): each
    module's __version__."""
    code = "; ".join(f"import {m}; print({m}.__version__)" for m in modules)
    if activation["image"]:
        assert activation["pythonPath"] is None
        return (await run_in_image(activation["image"], "python", "-c", code)).split()
    process = await asyncio.create_subprocess_exec(
        activation["pythonPath"], "-c", code, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().split()


async def test_lifecycle(people):
    alice, bob, carol, dave, erin = people.alice, people.bob, people.carol, people.dave, people.erin

    bases = (await alice("{ baseEnvironments { name pythonVersion } }"))["baseEnvironments"]
    assert {"name": "python:3.11", "pythonVersion": "3.11"} in bases

    # Create: Saved, no versions, not activatable.
    env = await create(
        alice,
        fullName="Machine Learning",
        description="for the tests",
        baseEnvironment="python:3.11",
        pythonVersion=None,
        pipLibraries=["yard-beta", "yard-gamma[fast]==0.5"],
    )
    env_id = env["id"]
    assert env["status"] == "SAVED"
    assert env["versions"] == [] and env["activeVersion"] is None
    assert env["baseEnvironment"] == {"name": "python:3.11", "pythonVersion": "3.11"}
    assert env["pythonVersion"] == "3.11"
    assert (await alice.error(ACTIVATE, id=env_id)).code == "INVALID_STATE"

    # Version 1: the log over WebSocket is numbered without gaps and equals the stored log.
    env, lines = await build(alice, env_id)
    assert env["status"] == "DRAFT"
    v1 = env["versions"][0]
    assert (v1["number"], v1["status"]) == (1, "SUCCEEDED")
    assert installed(v1) == {
        "yard-alpha": "2.0",
        "yard-beta": "1.0",
        "yard-delta": "3.1",
        "yard-gamma": "0.5",
    }
    assert [line["number"] for line in lines] == list(range(1, len(lines) + 1))
    assert "\n".join(line["text"] for line in lines) == v1["log"]
    assert "Build succeeded" in v1["log"]
    # A subscriber who joins after the end still gets every line once, in order.
    assert await collect_log(alice, v1["id"]) == lines

    activation = (await alice(ACTIVATE, id=env_id))["activateEnvironment"]
    assert activation["version"]["number"] == 1
    assert await imports(activation, "yard_beta", "yard_alpha", "yard_delta") == [
        "1.0",
        "2.0",
        "3.1",
    ]

    # Version 2 starts from version 1: a library removed from the request stays installed.
    await alice(UPDATE, id=env_id, i={"pipLibraries": ["yard-gamma[fast]==0.5", "yard-extra"]})
    env, _ = await build(alice, env_id)
    v2 = env["versions"][1]
    assert (v2["number"], v2["status"], env["status"]) == (2, "SUCCEEDED", "DRAFT")
    assert v2["pipLibraries"] == ["yard-gamma[fast]==0.5", "yard-extra"]
    assert v1["pipLibraries"] == ["yard-beta", "yard-gamma[fast]==0.5"]
    assert installed(v2) == {**installed(v1), "yard-extra": "1.0"}
    diff = (await alice(DIFF, a=v1["id"], b=v2["id"]))["libraryDiff"]["changes"]
    assert diff == [
        {"name": "yard-extra", "manager": "PIP", "kind": "ADDED", "before": None, "after": "1.0"}
    ]

    # A failed build is the latest version; the last successful one stays usable.
    await alice(UPDATE, id=env_id, i={"pipLibraries": ["yard-extra", "yard-missing"]})
    env, lines = await build(alice, env_id)
    assert env["status"] == "FAILED"
    v3 = env["versions"][2]
    assert (v3["number"], v3["status"], v3["packages"]) == (3, "FAILED", [])
    assert env["activeVersion"]["number"] == 2
    assert lines[-1]["text"].startswith("Build failed")
    assert "yard-missing" in v3["log"]
    activation = (await alice(ACTIVATE, id=env_id))["activateEnvironment"]
    assert activation["version"]["number"] == 2
    assert await imports(activation, "yard_extra") == ["1.0"]

    # The next build reuses number 3; its log replaces the failed attempt's.
    await alice(UPDATE, id=env_id, i={"pipLibraries": ["yard-extra", "yard-alpha==1.0"]})
    env, _ = await build(alice, env_id)
    assert [v["number"] for v in env["versions"]] == [1, 2, 3]
    v3 = env["versions"][2]
    assert v3["status"] == "SUCCEEDED" and "yard-missing" not in v3["log"]
    assert installed(v3)["yard-alpha"] == "1.0"
    diff = (await alice(DIFF, a=v2["id"], b=v3["id"]))["libraryDiff"]["changes"]
    assert diff == [
        {
            "name": "yard-alpha",
            "manager": "PIP",
            "kind": "DOWNGRADED",
            "before": "2.0",
            "after": "1.0",
        }
    ]

    # Revert to 1: a new version 4 holding exactly version 1's packages and requests.
    env = await revert(alice, env_id, 1)
    v4 = env["versions"][3]
    assert (v4["number"], v4["status"], v4["revertedFrom"]) == (4, "SUCCEEDED", 1)
    assert installed(v4) == installed(v1)
    assert v4["pipLibraries"] == v1["pipLibraries"] == env["pipLibraries"]
    activation = (await alice(ACTIVATE, id=env_id))["activateEnvironment"]
    assert activation["version"]["number"] == 4
    assert await imports(activation, "yard_alpha") == ["2.0"]

    # Another failure, then submit: failed versions are deleted, version 4 goes to review.
    await alice(UPDATE, id=env_id, i={"pipLibraries": ["yard-missing"]})
    env, _ = await build(alice, env_id)
    assert env["status"] == "FAILED" and env["latestVersion"]["number"] == 5
    env = (await alice(SUBMIT, id=env_id))["submitEnvironment"]
    assert env["status"] == "PENDING_APPROVAL"
    assert [v["number"] for v in env["versions"]] == [1, 2, 3, 4]
    assert env["activeVersion"]["number"] == 4

    # Visibility while pending: creator and the org's admins; nobody else.
    assert (await bob.error(GET, id=env_id)).code == "NOT_FOUND"
    assert (await erin.error(GET, id=env_id)).code == "NOT_FOUND"
    pending = (await carol(PENDING))["pendingEnvironments"]
    assert [p["id"] for p in pending if p["id"] == env_id] == [env_id]
    assert env_id not in [p["id"] for p in (await erin(PENDING))["pendingEnvironments"]]
    assert (await bob.error(PENDING)).code == "FORBIDDEN"

    # The admin compares it with a published environment of the organization.
    other = await create(bob, pipLibraries=["yard-alpha==1.0", "yard-extra"])
    await build(bob, other["id"])
    await bob(SUBMIT, id=other["id"])
    other = (await carol(APPROVE, id=other["id"]))["approveEnvironment"]
    assert other["status"] == "PUBLISHED"
    published_id = other["publishedVersion"]["id"]
    review = await get(carol, env_id)
    assert review["creator"]["username"] == "alice"
    changes = (await carol(DIFF, a=published_id, b=review["activeVersion"]["id"]))["libraryDiff"][
        "changes"
    ]
    kinds = {c["name"]: c["kind"] for c in changes}
    assert kinds == {
        "yard-alpha": "UPGRADED",
        "yard-beta": "ADDED",
        "yard-delta": "ADDED",
        "yard-extra": "REMOVED",
        "yard-gamma": "ADDED",
    }

    # Reject with feedback: back to Draft; the creator edits, rebuilds and resubmits.
    feedback = "Pin yard-alpha to 1.0 like the team environment."
    env = (await carol(REJECT, id=env_id, f=feedback))["rejectEnvironment"]
    assert (env["status"], env["reviewFeedback"]) == ("DRAFT", feedback)
    assert (await alice(GET, id=env_id))["environment"]["reviewFeedback"] == feedback
    await alice(UPDATE, id=env_id, i={"pipLibraries": ["yard-beta", "yard-alpha==1.0"]})
    env, _ = await build(alice, env_id)
    assert env["status"] == "DRAFT" and env["activeVersion"]["number"] == 5
    await alice(SUBMIT, id=env_id)
    env = (await carol(APPROVE, id=env_id))["approveEnvironment"]
    assert env["status"] == "PUBLISHED" and env["publishedVersion"]["number"] == 5

    # Published: the whole organization sees and activates it; the other one does not.
    assert env_id in [e["id"] for e in (await bob(LIST))["environments"]]
    activation = (await bob(ACTIVATE, id=env_id))["activateEnvironment"]
    assert activation["version"]["number"] == 5
    assert await imports(activation, "yard_alpha") == ["1.0"]
    assert env_id not in [e["id"] for e in (await dave(LIST))["environments"]]
    assert (await dave.error(ACTIVATE, id=env_id)).code == "NOT_FOUND"
    assert (await bob.error(BUILD, id=env_id)).code == "FORBIDDEN"

    # The creator may keep improving a published environment; the org keeps version 5.
    await alice(
        UPDATE, id=env_id, i={"pipLibraries": ["yard-beta", "yard-alpha==1.0", "yard-extra"]}
    )
    env, _ = await build(alice, env_id)
    assert env["status"] == "DRAFT" and env["publishedVersion"]["number"] == 5
    assert (await bob(ACTIVATE, id=env_id))["activateEnvironment"]["version"]["number"] == 5
    assert (await alice(ACTIVATE, id=env_id))["activateEnvironment"]["version"]["number"] == 6


async def test_log_streams_live_while_building(people):
    """Lines arrive while the build is still running, then the subscription completes."""
    alice = people.alice
    env = await create(alice, pipLibraries=["yard-slow"])
    version = (await alice(BUILD, id=env["id"]))["buildEnvironment"]
    seen_while_building: list[int] = []
    lines = []
    async with alice.subscription(
        "subscription($v: ID!) { buildLog(versionId: $v) { number text } }", v=version["id"]
    ) as messages:
        async for payload in messages:
            line = payload["data"]["buildLog"]
            lines.append(line)
            if len(lines) == 1:
                current = await get(alice, env["id"])
                if current["status"] == "IN_PROGRESS":
                    seen_while_building.append(line["number"])
                    # The version's log so far is readable over HTTP too.
                    assert current["versions"][0]["log"].startswith(line["text"])
    assert seen_while_building == [1]
    env = await get(alice, env["id"])
    assert env["status"] == "DRAFT"
    assert [line["number"] for line in lines] == list(range(1, len(lines) + 1))
    assert "\n".join(line["text"] for line in lines) == env["versions"][0]["log"]


LOCKFILES = (
    "query($id: ID!) { version(id: $id) { status packages { name version manager } "
    "req: lockfile(format: REQUIREMENTS_TXT) yml: lockfile(format: ENVIRONMENT_YML) "
    "lock: lockfile } }"
)


async def test_a_next_version_keeps_the_previous_versions_where_it_can(people):
    """Built on top of the previous version: its packages stay at their versions unless a
    library asks for others (the one uv resolution prefers them), and the lock file names
    the file of each version installed, with its hash. The install that keeps them exactly,
    run beside the resolution, stays only when it is what the resolution chose."""
    alice = people.alice
    env = await create(alice, pipLibraries=["yard-alpha==1.0"])
    env, _ = await build(alice, env["id"])
    # yard-beta wants yard-alpha>=1.0, whose newest is 2.0: 1.0 stays
    await alice(UPDATE, id=env["id"], i={"pipLibraries": ["yard-beta"]})
    env, _ = await build(alice, env["id"])
    v2 = env["versions"][1]
    assert installed(v2) == {"yard-alpha": "1.0", "yard-beta": "1.0"}, v2["log"]
    assert KEPT in v2["log"] and MOVED not in v2["log"] and "--exact" not in v2["log"]
    # yard-zeta's newest release needs yard-alpha 2.0: the resolution takes both newest,
    # where keeping yard-alpha would have taken yard-zeta 1.0
    await alice(UPDATE, id=env["id"], i={"pipLibraries": ["yard-beta", "yard-zeta"]})
    env, _ = await build(alice, env["id"])
    v3 = env["versions"][2]
    assert installed(v3) == {"yard-alpha": "2.0", "yard-beta": "1.0", "yard-zeta": "2.0"}
    assert f"{MOVED}: yard-alpha 1.0 -> 2.0. Installing" in v3["log"], v3["log"]
    assert "--exact" in v3["log"]
    # a library asking for another version of a kept package: keeping them cannot work
    update = {"pipLibraries": ["yard-beta", "yard-zeta", "yard-alpha<=1.0"]}
    await alice(UPDATE, id=env["id"], i=update)
    env, _ = await build(alice, env["id"])
    v4 = env["versions"][3]
    assert installed(v4) == {"yard-alpha": "1.0", "yard-beta": "1.0", "yard-zeta": "1.0"}
    moved = "yard-alpha 2.0 -> 1.0; yard-zeta 2.0 -> 1.0. Installing"
    assert f"{MOVED} (keeping them failed: " in v4["log"] and moved in v4["log"], v4["log"]
    assert "--exact" in v4["log"]
    lock = read_lock((await alice(LOCKFILES, id=v4["id"]))["version"]["lock"])
    files = {p["name"]: p["location"] for p in lock["packages"] if p["name"].startswith("yard")}
    assert files.keys() == {"yard-alpha", "yard-beta", "yard-zeta"}
    for name, location in files.items():
        wheel = f"{name.replace('-', '_')}-{installed(v4)[name]}-py3-none-any.whl#sha256="
        assert wheel in location, location


KEPT = "Installing them with the previous version's packages at their versions"
MOVED = "The resolution moves packages of the previous version"


async def test_a_next_version_that_cannot_be_installed_fails_once(people):
    """yard-unbuilt resolves (its metadata reads well) but its build fails: the install
    that keeps the previous version's packages fails, the resolution moves none of them,
    and the build fails with that install's cause, not trying the same install again."""
    alice = people.alice
    env = await create(alice, pipLibraries=["yard-alpha==1.0"])
    env, _ = await build(alice, env["id"])
    await alice(UPDATE, id=env["id"], i={"pipLibraries": ["yard-alpha==1.0", "yard-unbuilt"]})
    version = (await alice(BUILD, id=env["id"]))["buildEnvironment"]
    env = await wait_built(alice, env["id"])
    assert env["status"] == "FAILED"
    log = next(v for v in env["versions"] if v["id"] == version["id"])["log"]
    assert "this package's build fails on purpose" in log, log
    assert log.count("$ uv pip install") == 1 and MOVED not in log, log
    assert KEPT in log and "yard-unbuilt" in log.splitlines()[-1], log


async def test_lock_files_list_exactly_the_installed_packages(server, people):
    alice = people.alice
    env = await create(alice, pipLibraries=["yard-beta", "yard-gamma[fast]"])
    version = (await alice(BUILD, id=env["id"]))["buildEnvironment"]
    pending = (await alice(LOCKFILES, id=version["id"]))["version"]
    assert (pending["req"], pending["yml"], pending["lock"]) == (None, None, None)
    done = await wait_built(alice, env["id"])
    assert done["status"] == "DRAFT", done["versions"][0]["log"]
    built = (await alice(LOCKFILES, id=version["id"]))["version"]
    pins = sorted(f"{p['name']}=={p['version']}" for p in built["packages"])
    yard = ["yard-alpha==2.0", "yard-beta==1.0", "yard-delta==3.1", "yard-gamma==0.5"]
    assert [pin for pin in pins if pin.startswith("yard-")] == yard  # (Docker: pip too)
    assert sorted(built["req"].splitlines()) == pins
    yml = yaml.safe_load(built["yml"])
    assert yml["name"] == env["shortName"] and yml["dependencies"][0] == "python=3.11"
    assert sorted(yml["dependencies"][1]["pip"]) == pins
    lock = read_lock(built["lock"])
    assert sorted(f"{p['name']}=={p['version']}" for p in lock["packages"]) == pins
    assert {p["kind"] for p in lock["packages"]} == {"pypi"}
    # Version 1's install resolves by itself; the resolution beside it gives each file
    for p in lock["packages"]:
        if p["name"].startswith("yard-"):
            wheel = f"{p['name'].replace('-', '_')}-{p['version']}-py3-none-any.whl#sha256="
            assert wheel in p["location"], p
    # On the server host, `envyard lock` prints the same files.
    for fmt, text in [("REQUIREMENTS_TXT", built["req"]), ("LOCK", built["lock"])]:
        printed = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "app.cli", "lock", env["id"], "--format", fmt],
            env=server.env,
            stdout=PIPE,
            stderr=PIPE,
        )
        out, err = await printed.communicate()
        assert printed.returncode == 0, err
        if server.mode == "standalone" or fmt != "LOCK":
            assert out.decode() == text
        else:  # Docker builds record no lock yet: made again, the same but for its order
            assert read_lock(out.decode()) == lock
