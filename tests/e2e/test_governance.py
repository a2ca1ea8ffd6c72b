"""The admin's review tools over GraphQL, against a real deployment of each mode: the review
flow a dashboard drives, the events of a whole lifecycle (live on another API process in
distributed mode), search with cursors, and who may see what.

Each test works in an organization of its own, so that "every published environment of the
organization" and search totals are exact whatever the other tests did."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.e2e.conftest import People, Team
from tests.support.client import Client, GraphQLErrors
from tests.support.ops import (
    ACTIVATE,
    BUILD,
    DEPRECATE,
    REJECT,
    SUBMIT,
    UPDATE,
    build,
    create,
    get,
    revert,
    wait_built,
)
from tests.support.server import Server

pytestmark = pytest.mark.e2e

APPROVE = (
    "mutation($id: ID!, $ack: Boolean!) { approveEnvironment(id: $id, "
    "acknowledgeViolations: $ack) { id status publishedVersion { number } reviewFeedback } }"
)
SET_POLICY = (
    "mutation($rules: [String!]!) { setPolicy(input: {blockedPackages: $rules}) "
    "{ blockedPackages updatedAt } }"
)
POLICY = "{ policy { blockedPackages updatedAt } }"
COMPARE = """query($v: ID!) { compareWithPublished(versionId: $v) {
  environment { id shortName status } version { id number }
  similarity sameVersions changes { name manager kind before after } } }"""
COMPARE_FIRST = COMPARE.replace("($v: ID!)", "($v: ID!, $n: Int)").replace(
    "(versionId: $v)", "(versionId: $v, first: $n)"
)
VIOLATIONS = """query($id: ID!) { environment(id: $id) {
  versions { number policyViolations { name manager version rule } } } }"""
WITH_PACKAGE = """query($name: String!, $spec: String) { versionsWithPackage(name: $name,
  spec: $spec) { id number environment { id shortName } packages { name version } } }"""
CANDIDATES = "query($d: Int!) { deprecationCandidates(unusedForDays: $d) { id shortName } }"
EVENT_FIELDS = "id at kind environment { id } actor { username } versionNumber note"
EVENTS = f"query($id: ID!) {{ environment(id: $id) {{ events {{ {EVENT_FIELDS} }} }} }}"
LATEST = f"query($n: Int!) {{ events(first: $n) {{ {EVENT_FIELDS} }} }}"
FOLLOW = f"subscription {{ environmentEvents {{ {EVENT_FIELDS} }} }}"
USAGE = "query($id: ID!) { environment(id: $id) { usage { activations users lastActivatedAt } } }"
SEARCH = """query($f: EnvironmentFilter, $n: Int! = 50, $after: String) {
  searchEnvironments(filter: $f, first: $n, after: $after) {
    totalCount edges { cursor node { id shortName status creator { username } } }
    pageInfo { hasNextPage endCursor } } }"""
CANCEL = "mutation($v: ID!) { cancelBuild(versionId: $v) { id status } }"


def endpoint(server: Server, client: Client) -> Client:
    """The same caller on the deployment's second API process (the same one when there is
    only one)."""
    other = server.peer or server
    return Client(other.http_url, other.ws_url, client.token)


def jaccard(a: dict[str, Any], b: dict[str, Any]) -> float:
    left = {(p["manager"], p["name"]) for p in a["packages"]}
    right = {(p["manager"], p["name"]) for p in b["packages"]}
    return len(left & right) / len(left | right)


def successful(env: dict[str, Any]) -> dict[str, Any]:
    version: dict[str, Any] = [v for v in env["versions"] if v["status"] == "SUCCEEDED"][-1]
    return version


async def publish(admin: Client, member: Client, env_id: str) -> None:
    await member(SUBMIT, id=env_id)
    assert (await admin(APPROVE, id=env_id, ack=False))["approveEnvironment"]["status"] == (
        "PUBLISHED"
    )


async def built(client: Client, **fields: Any) -> dict[str, Any]:
    env = await create(client, **fields)
    env, _ = await build(client, env["id"])
    assert env["status"] == "DRAFT", env
    return env


# -- the review flow -------------------------------------------------------------------------


async def test_review_dashboard(server, teams, people: People):
    team: Team = teams("initech", 3)
    gina, (hank, ivy, _) = team.admin, team.members

    # Three published environments: an exact duplicate of what ivy will submit (conda and
    # pip), one sharing its pip part, one sharing nothing.
    dup = await built(
        hank, shortName="dup", condaLibraries=["yardc-alpha==1.0"], pipLibraries=["yard-beta"]
    )
    near = await built(hank, shortName="near", pipLibraries=["yard-beta"])
    far = await built(hank, shortName="far", pipLibraries=["yard-gamma[fast]==0.5"])
    for env in (dup, near, far):
        await publish(gina, hank, env["id"])

    # The policy: validated like libraries, admins only; bad input changes nothing.
    assert (await gina(POLICY))["policy"] == {"blockedPackages": [], "updatedAt": None}
    rules = ["yard-alpha>1.5", "yardc-alpha=1.0", "telnetlib3"]
    policy = (await gina(SET_POLICY, rules=rules))["setPolicy"]
    assert policy["blockedPackages"] == rules and policy["updatedAt"]
    for bad in (["yard-alpha<<2"], ["pkg; rm -rf /"], ["yard-alpha", "Yard_Alpha"], [""]):
        error = await gina.error(SET_POLICY, rules=bad)
        assert error.code == "BAD_USER_INPUT" and error.field == "blockedPackages", bad
    assert (await ivy.error(SET_POLICY, rules=[])).code == "FORBIDDEN"
    # The other organization's admin sets his own organization's policy, not this one.
    await people.erin(SET_POLICY, rules=[])
    assert (await gina(POLICY))["policy"] == policy
    assert (await ivy(POLICY))["policy"] == policy  # members read their organization's
    assert (await people.anonymous.error(POLICY)).code == "UNAUTHENTICATED"

    # ivy's environment: the same libraries as dup.
    pending = await built(
        ivy, shortName="pend", condaLibraries=["yardc-alpha==1.0"], pipLibraries=["yard-beta"]
    )
    version = successful(pending)
    await ivy(SUBMIT, id=pending["id"])
    assert pending["id"] in {
        e["id"] for e in (await gina("{ pendingEnvironments { id } }"))["pendingEnvironments"]
    }

    # Compared with every published environment of the organization, most similar first.
    found = (await gina(COMPARE, v=version["id"]))["compareWithPublished"]
    assert [c["environment"]["shortName"] for c in found] == ["dup", "near", "far"]
    published = {e["shortName"]: successful(await get(gina, e["id"])) for e in (dup, near, far)}
    for comparison in found:
        theirs = published[comparison["environment"]["shortName"]]
        assert comparison["version"] == {"id": theirs["id"], "number": 1}
        assert comparison["similarity"] == pytest.approx(jaccard(theirs, version))
        mine = {(p["name"], p["version"]) for p in version["packages"]}
        assert comparison["sameVersions"] == len(
            mine & {(p["name"], p["version"]) for p in theirs["packages"]}
        )
        diff = (
            await gina(
                "query($a: ID!, $b: ID!) { libraryDiff(fromVersion: $a, toVersion: $b) "
                "{ changes { name manager kind before after } } }",
                a=theirs["id"],
                b=version["id"],
            )
        )["libraryDiff"]["changes"]
        assert comparison["changes"] == diff
    assert found[0]["similarity"] == 1.0 and found[0]["changes"] == []
    assert found[0]["sameVersions"] == len(version["packages"])
    assert 0 < found[1]["similarity"] < 1 and found[2]["similarity"] < found[1]["similarity"]
    top = (await gina(COMPARE_FIRST, v=version["id"], n=2))["compareWithPublished"]
    assert top == found[:2]
    for bad in (0, 1001):
        assert (await gina.error(COMPARE_FIRST, v=version["id"], n=bad)).code == "BAD_USER_INPUT"
    assert {c["kind"] for c in found[1]["changes"]} == {"ADDED"}  # the conda part
    assert {c["manager"] for c in found[1]["changes"]} == {"CONDA"}

    # The violations, dependencies and both managers included, block approval.
    versions = (await gina(VIOLATIONS, id=pending["id"]))["environment"]["versions"]
    violations = sorted(versions[0]["policyViolations"], key=lambda v: v["name"])
    assert violations == [
        {"name": "yard-alpha", "manager": "PIP", "version": "2.0", "rule": "yard-alpha>1.5"},
        {"name": "yardc-alpha", "manager": "CONDA", "version": "1.0", "rule": "yardc-alpha=1.0"},
    ]
    error = await gina.error(APPROVE, id=pending["id"], ack=False)
    assert error.code == "INVALID_STATE"
    assert sorted(error.errors[0]["extensions"]["violations"], key=lambda v: v["name"]) == (
        violations
    )
    assert "yard-alpha 2.0 (pip) matches 'yard-alpha>1.5'" in error.errors[0]["message"]
    assert (await get(gina, pending["id"]))["status"] == "PENDING_APPROVAL"

    # Rejected twice: every feedback stays in the events, reviewFeedback keeps the last.
    for feedback in ("same as dup: use dup", "still the same as dup"):
        await gina(REJECT, id=pending["id"], f=feedback)
        await ivy(SUBMIT, id=pending["id"])
    approved = (await gina(APPROVE, id=pending["id"], ack=True))["approveEnvironment"]
    assert approved["status"] == "PUBLISHED" and approved["publishedVersion"] == {"number": 1}
    assert approved["reviewFeedback"] == "still the same as dup"

    timeline = (await ivy(EVENTS, id=pending["id"]))["environment"]["events"]
    assert [
        (e["kind"], (e["actor"] or {}).get("username"), e["versionNumber"]) for e in timeline
    ] == [
        ("CREATED", "initech-1", None),
        ("BUILD_QUEUED", "initech-1", 1),
        ("BUILD_SUCCEEDED", None, 1),
        ("SUBMITTED", "initech-1", 1),
        ("REJECTED", "initech-admin", 1),
        ("SUBMITTED", "initech-1", 1),
        ("REJECTED", "initech-admin", 1),
        ("SUBMITTED", "initech-1", 1),
        ("APPROVED", "initech-admin", 1),
    ]
    assert [e["note"] for e in timeline if e["kind"] == "REJECTED"] == [
        "same as dup: use dup",
        "still the same as dup",
    ]
    assert timeline[-1]["note"].startswith("acknowledged policy violations: ")
    assert "yardc-alpha 1.0 (conda) matches 'yardc-alpha=1.0'" in timeline[-1]["note"]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)

    # Which versions ship yard-alpha 2 (a dependency of yard-beta), and usage.
    hits = (await gina(WITH_PACKAGE, name="Yard_Alpha", spec=">=2"))["versionsWithPackage"]
    assert sorted(v["environment"]["shortName"] for v in hits) == ["dup", "near", "pend"]
    assert all({"name": "yard-alpha", "version": "2.0"} in v["packages"] for v in hits)
    assert (await gina(WITH_PACKAGE, name="yard-alpha", spec="<2"))["versionsWithPackage"] == []
    for name, spec in (("yard alpha", None), ("yard-alpha", "<<2")):
        assert (await gina.error(WITH_PACKAGE, name=name, spec=spec)).code == "BAD_USER_INPUT"

    assert (await gina(USAGE, id=dup["id"]))["environment"]["usage"] == {
        "activations": 0,
        "users": 0,
        "lastActivatedAt": None,
    }
    for who in (hank, ivy, ivy):
        await who(ACTIVATE, id=dup["id"])
    usage = (await gina(USAGE, id=dup["id"]))["environment"]["usage"]
    assert usage["activations"] == 3 and usage["users"] == 2 and usage["lastActivatedAt"]
    # Nothing was published a day ago; everything is unused "for 0 days".
    assert (await gina(CANDIDATES, d=1))["deprecationCandidates"] == []
    candidates = (await gina(CANDIDATES, d=0))["deprecationCandidates"]
    assert sorted(e["shortName"] for e in candidates) == ["dup", "far", "near", "pend"]
    assert candidates[-1]["shortName"] == "dup"  # the most recently used last
    assert (await gina.error(CANDIDATES, d=-1)).code == "BAD_USER_INPUT"

    await _visibility(team, people, pending=pending, published=dup)


async def _visibility(
    team: Team, people: People, pending: dict[str, Any], published: dict[str, Any]
) -> None:
    """Every new field and query, for the creator, another member, the admin, the other
    organization's member and admin, and nobody: NOT_FOUND or FORBIDDEN, never a leak."""
    gina, (hank, ivy, jo) = team.admin, team.members
    outsiders = (people.dave, people.erin)
    # jo's draft: seen by jo alone (the admin sees only what is submitted).
    draft = await built(jo, shortName="hid", pipLibraries=["yard-alpha==2.0"])
    draft_version = successful(draft)["id"]
    initech = {pending["id"], published["id"], draft["id"]}

    for who in (hank, ivy, gina, *outsiders):
        for query, variables in (
            (EVENTS, {"id": draft["id"]}),
            (USAGE, {"id": draft["id"]}),
            (VIOLATIONS, {"id": draft["id"]}),
            (COMPARE, {"v": draft_version}),
        ):
            assert (await who.error(query, **variables)).code == "NOT_FOUND", (query, who.token)
    for who in outsiders:
        for query, variables in (
            (EVENTS, {"id": published["id"]}),
            (USAGE, {"id": published["id"]}),
            (COMPARE, {"v": successful(published)["id"]}),
        ):
            assert (await who.error(query, **variables)).code == "NOT_FOUND"
    # Seen, but not theirs to compare: a member who did not create it.
    assert (await ivy.error(COMPARE, v=successful(published)["id"])).code == "FORBIDDEN"
    assert (await jo(COMPARE, v=draft_version))["compareWithPublished"]
    assert (await jo(VIOLATIONS, id=draft["id"]))["environment"]["versions"][0][
        "policyViolations"
    ] == [
        {"name": "yard-alpha", "manager": "PIP", "version": "2.0", "rule": "yard-alpha>1.5"},
    ]
    for who in (hank, ivy, jo):
        assert (await who.error(CANDIDATES, d=0)).code == "FORBIDDEN"

    def ids(rows: list[dict[str, Any]]) -> set[str]:
        return {r["environment"]["id"] for r in rows}

    # Lists hold only what each caller may see.
    for who, sees_draft in ((jo, True), (hank, False), (ivy, False), (gina, False)):
        hits = (await who(WITH_PACKAGE, name="yard-alpha", spec=None))["versionsWithPackage"]
        assert (draft["id"] in ids(hits)) is sees_draft
        events = (await who(LATEST, n=500))["events"]
        assert (draft["id"] in ids(events)) is sees_draft
        page = (await who(SEARCH, f={"search": "hid"}))["searchEnvironments"]
        assert [e["node"]["id"] for e in page["edges"]] == ([draft["id"]] if sees_draft else [])
        assert page["totalCount"] == (1 if sees_draft else 0)
    for who in outsiders:
        assert not ids((await who(WITH_PACKAGE, name="yard-alpha"))["versionsWithPackage"]) & (
            initech
        )
        assert not ids((await who(LATEST, n=500))["events"]) & initech
        assert not {e["node"]["id"] for e in await _all_pages(who, {}, 100)} & initech
    candidates = (await people.erin(CANDIDATES, d=0))["deprecationCandidates"]
    assert not {e["id"] for e in candidates} & initech
    assert (await people.dave.error(CANDIDATES, d=0)).code == "FORBIDDEN"
    for query, variables in (
        (POLICY, {}),
        (LATEST, {"n": 1}),
        (SEARCH, {}),
        (CANDIDATES, {"d": 0}),
        (WITH_PACKAGE, {"name": "yard-alpha"}),
        (COMPARE, {"v": draft_version}),
        (SET_POLICY, {"rules": []}),
    ):
        for nobody in (people.anonymous, people.forged):
            assert (await nobody.error(query, **variables)).code == "UNAUTHENTICATED", query


# -- events ----------------------------------------------------------------------------------


@dataclass
class Watch:
    """One environmentEvents subscription, collecting what it receives."""

    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)

    async def until(self, found: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while not found(self.received):
            assert not self.errors, self.errors
            assert asyncio.get_running_loop().time() < deadline, self.received
            await asyncio.sleep(0.05)

    async def ready(self, caller: Client, env_id: str) -> None:
        """Subscriptions start receiving from some point after they are sent: change one of
        the caller's environments until an event of it arrives."""
        for attempt in range(100):
            await caller(UPDATE, id=env_id, i={"description": f"probe {attempt}"})
            with contextlib.suppress(AssertionError):
                await self.until(
                    lambda got: any(e["environment"]["id"] == env_id for e in got), timeout=0.2
                )
                return
        raise AssertionError("the subscription never started")

    def of(self, env_id: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e["environment"]["id"] == env_id]


@contextlib.asynccontextmanager
async def watching(client: Client) -> AsyncIterator[Watch]:
    watch = Watch()

    async def run() -> None:
        async with client.subscription(FOLLOW) as messages:
            async for payload in messages:
                if payload.get("errors"):
                    watch.errors.append(payload["errors"])
                    return
                watch.received.append(payload["data"]["environmentEvents"])

    task = asyncio.create_task(run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_events_of_a_lifecycle(server, teams, people: People):
    """Every change is an event, in order, with its actor, version and note; subscribers on
    the other API process see each one they may see, live."""
    team: Team = teams("hooli", 2)
    admin, (maker, other) = team.admin, team.members
    callers = (admin, maker, other, people.dave)
    probes = {c.token: (await create(c))["id"] for c in callers}
    async with contextlib.AsyncExitStack() as stack:
        watches: dict[str | None, Watch] = {}
        for caller in callers:
            there = endpoint(server, caller)
            stack.push_async_callback(there.aclose)
            watches[caller.token] = await stack.enter_async_context(watching(there))
            await watches[caller.token].ready(caller, probes[caller.token])

        env = await create(maker, pipLibraries=["yard-nonexistent"])
        env_id = env["id"]
        maker_watch = watches[maker.token]

        async def caught_up() -> None:
            """A worker publishes a build's last event after its commit, concurrently with
            what the test does next: wait for it, so that the stream's order is the
            timeline's (the stored timeline's order never depends on this)."""
            stored = len((await maker(EVENTS, id=env_id))["environment"]["events"])
            await maker_watch.until(lambda _: len(maker_watch.of(env_id)) == stored)

        await maker(UPDATE, id=env_id, i={"fullName": "Renamed"})
        env, _ = await build(maker, env_id)
        assert env["status"] == "FAILED"
        await caught_up()
        await maker(UPDATE, id=env_id, i={"pipLibraries": ["yard-alpha==1.0"]})
        env, _ = await build(maker, env_id)  # version 1 again
        await caught_up()
        await maker(UPDATE, id=env_id, i={"pipLibraries": ["yard-slow"]})
        slow = (await maker(BUILD, id=env_id))["buildEnvironment"]
        assert (await maker(CANCEL, v=slow["id"]))["cancelBuild"]["status"] == "FAILED"
        await wait_built(maker, env_id)
        await caught_up()
        await maker(UPDATE, id=env_id, i={"pipLibraries": ["yard-alpha==2.0"]})
        await build(maker, env_id)  # version 2 again
        await caught_up()
        await revert(maker, env_id, 1)  # version 3
        await caught_up()
        await maker(ACTIVATE, id=env_id)
        await maker(SUBMIT, id=env_id)
        await admin(REJECT, id=env_id, f="pin it")
        await maker(SUBMIT, id=env_id)
        await admin(APPROVE, id=env_id, ack=True)
        await other(ACTIVATE, id=env_id)
        await admin(DEPRECATE, id=env_id)

        m, a = "hooli-0", "hooli-admin"
        expected = [
            ("CREATED", m, None),
            ("UPDATED", m, None),
            ("BUILD_QUEUED", m, 1),
            ("BUILD_FAILED", None, 1),
            ("UPDATED", m, None),
            ("BUILD_QUEUED", m, 1),
            ("BUILD_SUCCEEDED", None, 1),
            ("UPDATED", m, None),
            ("BUILD_QUEUED", m, 2),
            ("BUILD_CANCELLED", m, 2),
            ("UPDATED", m, None),
            ("BUILD_QUEUED", m, 2),
            ("BUILD_SUCCEEDED", None, 2),
            ("REVERTED", m, 3),
            ("BUILD_SUCCEEDED", None, 3),
            ("ACTIVATED", m, 3),
            ("SUBMITTED", m, 3),
            ("REJECTED", a, 3),
            ("SUBMITTED", m, 3),
            ("APPROVED", a, 3),
            ("ACTIVATED", "hooli-1", 3),
            ("DEPRECATED", a, 3),
        ]
        timeline = (await maker(EVENTS, id=env_id))["environment"]["events"]

        def summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return [
                (e["kind"], (e["actor"] or {}).get("username"), e["versionNumber"]) for e in events
            ]

        assert summary(timeline) == expected
        notes = {e["kind"]: e["note"] for e in timeline}
        assert "yard-nonexistent" in notes["BUILD_FAILED"]
        assert notes["BUILD_CANCELLED"] == "cancelled by hooli-0"
        assert notes["REJECTED"] == "pin it"
        assert "pipLibraries" in timeline[4]["note"]
        ids = [int(e["id"]) for e in timeline]
        assert ids == sorted(ids) and [e["at"] for e in timeline] == sorted(
            e["at"] for e in timeline
        )
        # Query.events: newest first.
        latest = (await maker(LATEST, n=len(expected)))["events"]
        assert latest == timeline[::-1]

        # Live, on the other API process: the creator sees every event, as stored.
        await maker_watch.until(lambda _: len(maker_watch.of(env_id)) == len(expected))
        assert maker_watch.of(env_id) == timeline
        # The admin sees them from the submission on (before it, the environment was the
        # member's own); the other member once it was published.
        admin_watch, other_watch = watches[admin.token], watches[other.token]
        await admin_watch.until(lambda _: admin_watch.of(env_id)[-1:] == timeline[-1:])
        assert admin_watch.of(env_id) == timeline[16:]
        await other_watch.until(lambda _: other_watch.of(env_id)[-1:] == timeline[-1:])
        assert summary(other_watch.of(env_id)) == expected[19:]
        # The other organization saw none of it: after its own last event, only its own.
        dave_watch, probe = watches[people.dave.token], probes[people.dave.token]
        before = len(dave_watch.of(probe))
        await people.dave(UPDATE, id=probe, i={"description": "last"})
        await dave_watch.until(lambda _: len(dave_watch.of(probe)) == before + 1)
        assert {e["environment"]["id"] for e in dave_watch.received} == {probe}


# -- search ----------------------------------------------------------------------------------


async def test_search_with_every_filter_and_cursors(server, teams):
    """120 environments of two members: every filter, alone and together, and pages that
    neither repeat nor skip, even when an environment is added between two pages."""
    team: Team = teams("umbrella", 2)
    admin, members = team.admin, team.members
    names = ["umbrella-0", "umbrella-1"]
    made: dict[str, dict[str, Any]] = {}  # short name -> what the test knows of it
    for start in range(0, 120, 20):
        by_creator: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
        for i in range(start, start + 20):
            creator = 0 if i % 12 < 7 else 1
            description = "has a needle" if i % 10 == 3 else ("50% off" if i == 42 else "plain")
            by_creator[creator].append(
                {
                    "shortName": f"s{i:03d}",
                    "fullName": f"Search {i}",
                    "description": description,
                    "pythonVersion": "3.11",
                }
            )
            made[f"s{i:03d}"] = {
                "creator": names[creator],
                "status": "SAVED",
                "text": f"s{i:03d} search {i} {description}".lower(),
            }
        for creator, inputs in by_creator.items():
            await _create_many(members[creator], inputs)
    ids = {e["node"]["shortName"]: e["node"]["id"] for e in await _all_pages(admin, {}, 100)}
    assert not ids  # nothing is submitted or published yet: the admin sees none of it

    # s000 (member 0) published with yard-beta, so yard-alpha; s007 (member 1) a draft.
    own = await _all_pages(members[0], {"search": "s000"}, 10)
    s000 = own[0]["node"]["id"]
    await members[0](UPDATE, id=s000, i={"pipLibraries": ["yard-beta"]})
    await build(members[0], s000)
    await publish(admin, members[0], s000)
    s007 = (await _all_pages(members[1], {"search": "s007"}, 10))[0]["node"]["id"]
    await members[1](UPDATE, id=s007, i={"pipLibraries": ["yard-alpha==2.0"]})
    await build(members[1], s007)
    made["s000"]["status"], made["s007"]["status"] = "PUBLISHED", "DRAFT"
    made["s000"]["packages"], made["s007"]["packages"] = {"yard-alpha", "yard-beta"}, {"yard-alpha"}

    def visible(username: str | None) -> list[str]:  # None: the admin
        return sorted(
            s
            for s, e in made.items()
            if e["creator"] == username
            or (e["status"] == "PUBLISHED" or (username is None and e["status"] == "SUBMITTED"))
        )

    def expect(username: str | None, status=None, search=None, creator=None, package=None):
        return [
            s
            for s in visible(username)
            if (status is None or made[s]["status"] in status)
            and (search is None or search.lower() in made[s]["text"])
            and (creator is None or made[s]["creator"] == creator)
            and (package is None or package in made[s].get("packages", ()))
        ]

    callers = {None: admin, names[0]: members[0], names[1]: members[1]}
    filters: list[dict[str, Any]] = [
        {},
        {"status": ["SAVED"]},
        {"status": ["DRAFT", "PUBLISHED"]},
        {"search": "NEEDLE"},
        {"search": "Search 11"},
        {"search": "50%"},
        {"search": "%"},
        {"search": "_"},
        {"creator": "umbrella-1"},
        {"creator": "nobody"},
        {"containsPackage": "Yard_Alpha"},
        {"containsPackage": "yard-beta", "creator": "umbrella-0"},
        {"status": ["SAVED"], "search": "needle", "creator": "umbrella-0"},
    ]
    for username, client in callers.items():
        for where in filters:
            wanted = expect(
                username,
                where.get("status"),
                where.get("search"),
                where.get("creator"),
                where.get("containsPackage", "").lower().replace("_", "-") or None,
            )
            for size in (7, 50):
                rows = await _all_pages(client, where, size, total=len(wanted))
                assert [r["node"]["shortName"] for r in rows] == wanted, (username, where, size)

    # Keyset pagination: between two pages, one environment is added before the cursor and
    # one after it. Offset pages would show an edge twice; cursor pages show neither repeat
    # nor skip: the earlier one is not shown, the later one once.
    member = members[0]
    first = (await member(SEARCH, n=30))["searchEnvironments"]
    seen = [e["node"]["shortName"] for e in first["edges"]]
    assert seen[0] < "s001a" < seen[-1] < "s099a"
    await create(member, shortName="s001a", fullName="early")
    await create(member, shortName="s099a", fullName="late")
    after = first["pageInfo"]["endCursor"]
    while after:
        page = (await member(SEARCH, n=30, after=after))["searchEnvironments"]
        seen += [e["node"]["shortName"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    for short, text in (("s001a", "s001a early"), ("s099a", "s099a late")):
        made[short] = {"creator": names[0], "status": "SAVED", "text": text}
    assert seen == [s for s in visible(names[0]) if s != "s001a"]

    for bad in (
        {"n": 0},
        {"n": 101},
        {"after": "not a cursor"},
        {"after": "ZW52Ono6eA=="},
        {"f": {"search": "x" * 201}},
        {"f": {"containsPackage": "a b"}},
    ):
        error = await member.error(SEARCH, **bad)
        assert error.code == "BAD_USER_INPUT", (bad, error)


async def _create_many(client: Client, inputs: list[dict[str, Any]]) -> None:
    """Create environments in one request (aliases)."""
    params = ", ".join(f"$i{n}: EnvironmentInput!" for n in range(len(inputs)))
    fields = " ".join(f"c{n}: createEnvironment(input: $i{n}) {{ id }}" for n in range(len(inputs)))
    await client(f"mutation({params}) {{ {fields} }}", **{f"i{n}": i for n, i in enumerate(inputs)})


async def _all_pages(
    client: Client, where: dict[str, Any], size: int, total: int | None = None
) -> list[dict[str, Any]]:
    """Every edge, page after page; checks totalCount, page sizes and cursors on the way."""
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        try:
            page = (await client(SEARCH, f=where, n=size, after=after))["searchEnvironments"]
        except GraphQLErrors as exc:
            raise AssertionError((where, exc.errors)) from None
        if total is not None:
            assert page["totalCount"] == total
        total = page["totalCount"]
        edges = page["edges"]
        rows += edges
        if not page["pageInfo"]["hasNextPage"]:
            assert len(rows) == total
            assert page["pageInfo"]["endCursor"] == (edges[-1]["cursor"] if edges else None)
            return rows
        assert len(edges) == size and page["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
