"""Every error code of the contract, and proof that a refused mutation changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.client import Client, GraphQLErrors, collect_log
from tests.support.ops import (
    ACTIVATE,
    APPROVE,
    BUILD,
    CREATE,
    DEPRECATE,
    DIFF,
    GET,
    LIST,
    REJECT,
    REVERT,
    SUBMIT,
    UPDATE,
    build,
    create,
    get,
    short_name,
    wait_built,
)

pytestmark = pytest.mark.e2e


async def refused(
    owner: Client, env_id: str, caller: Client, query: str, **variables: Any
) -> GraphQLErrors:
    """Send a mutation that must fail; check the environment is exactly as before."""
    before = await get(owner, env_id)
    error = await caller.error(query, **variables)
    assert await get(owner, env_id) == before
    return error


async def test_unauthenticated(people):
    for client in (people.anonymous, people.forged):
        error = await client.error("{ me { id } }")
        assert error.code == "UNAUTHENTICATED"
        error = await client.error(CREATE, i={"shortName": "zz", "fullName": "x"})
        assert error.code == "UNAUTHENTICATED"
    # On WebSocket: the same token rule, answered as a GraphQL error.
    async with people.forged.subscription(
        "subscription { buildLog(versionId: 1) { number } }"
    ) as messages:
        payloads = [p async for p in messages]
    assert payloads[0]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_me(people):
    me = (await people.carol("{ me { username isAdmin } }"))["me"]
    assert me == {"username": "carol", "isAdmin": True}


BAD_INPUTS = [
    ({"shortName": "toolong"}, "shortName"),
    ({"shortName": "Caps"}, "shortName"),
    ({"shortName": "9abc"}, "shortName"),
    ({"fullName": "   "}, "fullName"),
    ({"pythonVersion": None}, "pythonVersion"),
    ({"baseEnvironment": "python:3.11"}, "pythonVersion"),  # both base and version
    ({"pythonVersion": None, "baseEnvironment": "ubuntu:latest"}, "baseEnvironment"),
    ({"pythonVersion": "2.7"}, "pythonVersion"),
    ({"pipLibraries": ["yard-alpha", "yard-beta~=1.0"]}, "pipLibraries"),
    ({"pipLibraries": ["--index-url=http://127.0.0.1:1/simple"]}, "pipLibraries"),
    ({"pipLibraries": ["yard-alpha @ https://example.org/a.whl"]}, "pipLibraries"),
    ({"pipLibraries": ["yard-alpha; os_name == 'nt'"]}, "pipLibraries"),
    ({"pipLibraries": ["yard-alpha\nyard-beta"]}, "pipLibraries"),
    ({"pipLibraries": ["../some/path"]}, "pipLibraries"),
    ({"pipLibraries": [""]}, "pipLibraries"),
    ({"pipLibraries": ["yard-alpha", "YARD_alpha==1.0"]}, "pipLibraries"),
    ({"condaLibraries": ["numpy>1.0"]}, "condaLibraries"),
    ({"condaLibraries": ["conda-forge::numpy"]}, "condaLibraries"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_INPUTS)
async def test_bad_create_input_creates_nothing(people, fields, field):
    before = (await people.alice(LIST))["environments"]
    data = {"shortName": short_name(), "fullName": "Bad", "pythonVersion": "3.11", **fields}
    error = await people.alice.error(CREATE, i=data)
    assert (error.code, error.field) == ("BAD_USER_INPUT", field), error
    assert error.errors[0]["message"]
    assert (await people.alice(LIST))["environments"] == before


async def test_malformed_requests_are_bad_user_input(people):
    for query, variables in [
        ("{ me { id ", {}),  # syntax
        ("{ nope }", {}),  # unknown field
        (CREATE, {"i": {"shortName": 5}}),  # wrong variable types
        (GET, {"id": None}),
    ]:
        error = await people.alice.error(query, **variables)
        assert error.code == "BAD_USER_INPUT", error


async def test_name_taken_and_race(people):
    name = short_name()
    await create(people.alice, shortName=name)
    error = await people.bob.error(
        CREATE, i={"shortName": name, "fullName": "x", "pythonVersion": "3.11"}
    )
    assert (error.code, error.field) == ("NAME_TAKEN", "shortName")
    # Another organization may use the same short name.
    await create(people.dave, shortName=name)

    # Eight creators race for one new name: one winner, the others NAME_TAKEN.
    racing = short_name()
    results = await asyncio.gather(
        *(
            people.alice.raw(
                CREATE, i={"shortName": racing, "fullName": f"r{i}", "pythonVersion": "3.11"}
            )
            for i in range(8)
        )
    )
    codes = sorted(
        r["errors"][0]["extensions"]["code"] if r.get("errors") else "OK" for r in results
    )
    assert codes == ["NAME_TAKEN"] * 7 + ["OK"]
    mine = [e for e in (await people.alice(LIST))["environments"] if e["shortName"] == racing]
    assert len(mine) == 1


async def test_not_found(people):
    alice, dave = people.alice, people.dave
    env = await create(alice)
    for client, env_id in [(alice, "999999"), (alice, "not-a-number"), (dave, env["id"])]:
        error = await client.error(GET, id=env_id)
        assert error.code == "NOT_FOUND"
    error = await refused(alice, env["id"], dave, BUILD, id=env["id"])
    assert error.code == "NOT_FOUND"
    error = await refused(alice, env["id"], people.bob, UPDATE, id=env["id"], i={"fullName": "x"})
    assert error.code == "NOT_FOUND"
    assert (await alice.error(DIFF, a="999999", b="1")).code == "NOT_FOUND"


async def test_invalid_state_and_forbidden(people):
    alice, bob, carol, erin = people.alice, people.bob, people.carol, people.erin
    env = await create(alice, pipLibraries=["yard-alpha==1.0", "yard-slow"])
    env_id = env["id"]

    # Saved: nothing to activate, submit or revert; nothing to review.
    for query, variables in [(ACTIVATE, {}), (SUBMIT, {}), (REVERT, {"v": 1})]:
        error = await refused(alice, env_id, alice, query, id=env_id, **variables)
        assert error.code == "INVALID_STATE", (query, error)
    # Admins do not see an environment that was never submitted.
    error = await refused(alice, env_id, carol, DEPRECATE, id=env_id)
    assert error.code == "NOT_FOUND"

    # While a build is queued or running (yard-slow's index page answers after 3 s): no
    # second build, no edits, no activation, no submission.
    version = (await alice(BUILD, id=env_id))["buildEnvironment"]
    assert version["status"] in ("QUEUED", "BUILDING")
    assert (await get(alice, env_id))["status"] == "IN_PROGRESS"
    for query, variables in [
        (BUILD, {}),
        (UPDATE, {"i": {"pipLibraries": ["yard-beta"]}}),
        (ACTIVATE, {}),
        (SUBMIT, {}),
        (REVERT, {"v": 1}),
    ]:
        # (not `refused`: the running build's log grows meanwhile)
        error = await alice.error(query, id=env_id, **variables)
        assert error.code == "INVALID_STATE", (query, error)
    env = await wait_built(alice, env_id)
    assert env["status"] == "DRAFT" and len(env["versions"]) == 1
    assert env["pipLibraries"] == ["yard-alpha==1.0", "yard-slow"]

    # Review actions need an admin of the organization, and a pending environment.
    error = await refused(alice, env_id, carol, APPROVE, id=env_id)
    assert error.code == "NOT_FOUND"  # never submitted: admins do not see it
    await alice(SUBMIT, id=env_id)
    await carol(REJECT, id=env_id, f="Add a description.")
    error = await refused(alice, env_id, carol, APPROVE, id=env_id)
    assert error.code == "INVALID_STATE"  # rejected, back to Draft: not waiting for review
    await alice(SUBMIT, id=env_id)
    error = await refused(alice, env_id, alice, APPROVE, id=env_id)
    assert error.code == "FORBIDDEN"
    error = await refused(alice, env_id, alice, REJECT, id=env_id, f="no")
    assert error.code == "FORBIDDEN"
    error = await refused(alice, env_id, erin, APPROVE, id=env_id)
    assert error.code == "NOT_FOUND"
    error = await refused(alice, env_id, carol, REJECT, id=env_id, f="   ")
    assert (error.code, error.field) == ("BAD_USER_INPUT", "feedback")
    error = await refused(alice, env_id, alice, BUILD, id=env_id)
    assert error.code == "INVALID_STATE"  # pending review: no builds
    error = await refused(alice, env_id, alice, SUBMIT, id=env_id)
    assert error.code == "INVALID_STATE"

    env = (await carol(APPROVE, id=env_id))["approveEnvironment"]
    assert env["status"] == "PUBLISHED"
    # Published: others in the organization see it but only the creator changes it.
    error = await refused(alice, env_id, bob, UPDATE, id=env_id, i={"fullName": "mine"})
    assert error.code == "FORBIDDEN"
    error = await refused(alice, env_id, bob, DEPRECATE, id=env_id)
    assert error.code == "FORBIDDEN"
    error = await refused(alice, env_id, alice, REVERT, id=env_id, v=7)
    assert (error.code, error.field) == ("BAD_USER_INPUT", "version")

    # Deprecated: no longer offered for new use.
    env = (await carol(DEPRECATE, id=env_id))["deprecateEnvironment"]
    assert env["status"] == "DEPRECATED"
    for client in (alice, bob):
        assert (await client.error(ACTIVATE, id=env_id)).code == "INVALID_STATE"
    error = await refused(alice, env_id, alice, BUILD, id=env_id)
    assert error.code == "INVALID_STATE"


async def test_bad_update_changes_nothing(people):
    env = await create(people.alice, pipLibraries=["yard-alpha"])
    for update, field in [
        ({"pipLibraries": ["yard-alpha", "-r other.txt"]}, "pipLibraries"),
        ({"fullName": ""}, "fullName"),
        ({"fullName": None}, "fullName"),
        ({"condaLibraries": ["numpy=1.*"]}, "condaLibraries"),
    ]:
        error = await refused(people.alice, env["id"], people.alice, UPDATE, id=env["id"], i=update)
        assert (error.code, error.field) == ("BAD_USER_INPUT", field)
    # description: null clears it; fields left out stay.
    await people.alice(UPDATE, id=env["id"], i={"description": "about"})
    cleared = (await people.alice(UPDATE, id=env["id"], i={"description": None}))[
        "updateEnvironment"
    ]
    assert cleared["description"] is None and cleared["pipLibraries"] == ["yard-alpha"]


async def test_concurrent_builds_make_one_version(people):
    env = await create(people.alice, pipLibraries=["yard-alpha==2.0"])
    results = await asyncio.gather(*(people.alice.raw(BUILD, id=env["id"]) for _ in range(20)))
    ok = [r for r in results if not r.get("errors")]
    codes = {r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")}
    assert len(ok) == 1 and codes == {"INVALID_STATE"}
    env = await wait_built(people.alice, env["id"])
    assert [v["number"] for v in env["versions"]] == [1]
    assert env["status"] == "DRAFT"


async def test_cross_origin_websocket_refused(server):
    import websockets

    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            server.ws_url,
            subprotocols=["graphql-transport-ws"],
            origin="http://elsewhere.example",
        ):
            pass
    # Same origin (GraphiQL served by envyard itself) is accepted.
    async with websockets.connect(
        server.ws_url,
        subprotocols=["graphql-transport-ws"],
        origin=f"http://127.0.0.1:{server.port}",
    ):
        pass


async def test_cancel_build(people):
    alice = people.alice
    env = await create(alice, pipLibraries=["yard-slow"])
    version = (await alice(BUILD, id=env["id"]))["buildEnvironment"]
    cancel = "mutation($v: ID!) { cancelBuild(versionId: $v) { id number status log } }"
    assert (await people.bob.error(cancel, v=version["id"])).code == "NOT_FOUND"
    log_task = asyncio.create_task(collect_log(alice, version["id"]))
    cancelled = (await alice(cancel, v=version["id"]))["cancelBuild"]
    assert cancelled["status"] == "FAILED"
    assert cancelled["log"].splitlines()[-1] == "Build failed: cancelled by alice"
    lines = await log_task  # the subscription completes
    assert lines[-1]["text"] == "Build failed: cancelled by alice"
    env = await get(alice, env["id"])
    assert env["status"] == "FAILED"
    error = await refused(alice, env["id"], alice, cancel, v=version["id"])
    assert error.code == "INVALID_STATE"  # it has ended
    # The cancelled build does not come back to life; the next build reuses the number.
    await asyncio.sleep(1)
    assert (await get(alice, env["id"]))["versions"][0]["log"] == cancelled["log"]
    env, _ = await build(alice, env["id"])
    assert env["status"] == "DRAFT"
    assert [(v["number"], v["status"]) for v in env["versions"]] == [(1, "SUCCEEDED")]


FAILED_INSTALLS = [
    (["yard-nope"], "yard-nope was not found in the package index"),
    (["yard-alpha==9.0"], "no version matching yard-alpha==9.0 is in the package index"),
]


@pytest.mark.parametrize(("libraries", "cause"), FAILED_INSTALLS)
async def test_a_failed_install_names_its_cause(people, libraries, cause):
    env = await create(people.alice, pipLibraries=libraries)
    env, lines = await build(people.alice, env["id"])
    assert env["status"] == "FAILED"
    assert lines[-1]["text"].startswith("Build failed: ")
    assert cause in lines[-1]["text"], lines[-1]
    assert "see the lines above" not in lines[-1]["text"]


async def test_enormous_output_lines_are_cut_and_the_log_kept(people):
    """yard-long depends on a package with a 70,000-character name: the installer's error
    about it is a line that long."""
    env = await create(people.alice, pipLibraries=["yard-long"])
    env, lines = await build(people.alice, env["id"])
    texts = [line["text"] for line in lines]
    assert env["status"] == "FAILED"
    assert [line["number"] for line in lines] == list(range(1, len(lines) + 1))
    assert "\n".join(texts) == env["versions"][0]["log"]  # nothing lost
    cut = [t for t in texts if t.endswith("more characters cut]")]
    assert cut and all(len(t) < 16_384 + 60 for t in cut)
    assert max(map(len, texts)) < 16_384 + 60
    assert "internal error" not in texts[-1] and "yard-xxxxxxxx" in texts[-1]
