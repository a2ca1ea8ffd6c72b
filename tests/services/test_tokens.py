"""Token lookups shared by a process's callers (app/services/users.py TokenChecks): callers
in one moment share one query, and no answer is older than its caller allows."""

from __future__ import annotations

import asyncio

import pytest
from starlette.websockets import WebSocket

from app.domain.errors import Unauthenticated
from app.graphql.context import Context
from app.services.users import TokenChecks, add_user, new_user_token
from tests.support.runtime import api_runtime
from tests.support.statements import counting


def names(answers):
    return [None if user is None else user.username for _, user in answers]


async def name(checks, token, max_age=0.0, *, keep=False):
    return names([await checks.check(token, max_age, keep=keep)])[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_callers_of_one_moment_share_a_query(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path):
        _, alice = await add_user("acme", "alice", admin=False)
        _, bob = await add_user("acme", "bob", admin=False)
        checks = TokenChecks()
        asked = [alice, bob, "ey_unknown"] * 300
        with counting(monkeypatch) as sent:
            found = await asyncio.gather(*(checks.check(token) for token in asked))
        assert names(found) == ["alice", "bob", None] * 300
        assert sum(sent.values()) == 1
        # 600 tokens at once: BATCH (500) a query
        many = [f"ey_other{i}" for i in range(600)]
        with counting(monkeypatch) as sent:
            found = await asyncio.gather(*(checks.check(token) for token in many))
        assert names(found) == [None] * 600 and sum(sent.values()) == 2
        # a malformed token is never looked up
        with counting(monkeypatch) as sent:
            for token in ("é" * 3, "x" * 201, "", None):
                assert await name(checks, token) is None
        assert sum(sent.values()) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_answer_is_never_older_than_its_caller_allows(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path):
        _, token = await add_user("acme", "alice", admin=False)
        checks = TokenChecks()
        assert await name(checks, token, keep=True) == "alice"
        with counting(monkeypatch) as sent:
            assert await name(checks, token, 30) == "alice"  # the answer above
        assert sum(sent.values()) == 0
        await new_user_token("acme", "alice")  # the token rotated
        # allowed 30 s: the answer of a moment ago still stands; asked afresh: refused
        assert await name(checks, token, 30) == "alice"
        assert await name(checks, token) is None
        assert await name(checks, token, 30) is None  # the newest answer is kept
        await asyncio.sleep(0.05)
        with counting(monkeypatch) as sent:
            assert await name(checks, token, 0.01) is None  # older than allowed: asked again
        assert sum(sent.values()) == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_fresh_caller_never_joins_a_lookup_already_asked(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path):
        _, token = await add_user("acme", "alice", admin=False)
        checks = TokenChecks()
        with counting(monkeypatch) as sent:
            first = asyncio.ensure_future(checks.check(token))
            for _ in range(100):  # until its query is sent (not answered yet)
                if sent:
                    break
                await asyncio.sleep(0)
            assert not first.done()
            second = asyncio.ensure_future(checks.check(token))
            (asked_first, _), (asked_second, _) = await asyncio.gather(first, second)
        assert sum(sent.values()) == 2 and asked_second > asked_first


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_only_connections_users_are_kept(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path):
        _, token = await add_user("acme", "alice", admin=False)
        checks = TokenChecks()
        assert await name(checks, token) == "alice"  # a request's: not kept
        assert await name(checks, "ey_unknown", keep=True) is None  # no user: not kept
        with counting(monkeypatch) as sent:
            assert await name(checks, token, 30) == "alice"
            assert await name(checks, "ey_unknown", 30) is None
        assert sum(sent.values()) == 2


async def test_a_cancelled_caller_leaves_the_answer_to_the_others(tmp_path):
    async with api_runtime("sqlite", tmp_path):
        _, token = await add_user("acme", "alice", admin=False)
        checks = TokenChecks()
        first = asyncio.ensure_future(checks.check(token))
        second = asyncio.ensure_future(checks.check(token))
        await asyncio.sleep(0)  # both wait for the same lookup
        first.cancel()
        assert names([await second]) == ["alice"]
        with pytest.raises(asyncio.CancelledError):
            await first


def connection(rt, token: str) -> Context:
    scope = {"type": "websocket", "path": "/graphql", "headers": [], "query_string": b""}
    context = Context(rt, WebSocket(scope, receive=None, send=None))  # type: ignore[arg-type]
    context.connection_params = {"Authorization": f"Bearer {token}"}
    return context


async def test_a_connection_takes_a_recent_answer_and_checks_again_as_long_after_it(tmp_path):
    """A connection re-checking takes another connection's answer about its token if it is
    recent enough, and is due again ENVYARD_TOKEN_RECHECK after that answer (not after its
    own check): a rotated token stands at most ENVYARD_TOKEN_RECHECK s."""
    async with api_runtime("sqlite", tmp_path, ENVYARD_TOKEN_RECHECK="30") as rt:
        now = [1000.0]
        rt.tokens.clock = lambda: now[0]
        _, token = await add_user("acme", "alice", admin=False)
        first, second = connection(rt, token), connection(rt, token)
        assert (await first.user()).username == "alice"  # looked up at 1000
        now[0] = 1020.0
        assert (await second.user()).username == "alice"  # looked up at 1020, kept
        await new_user_token("acme", "alice")
        now[0] = 1031.0  # the first is due: it takes the answer of 1020
        assert (await first.user()).username == "alice"
        now[0] = 1049.0  # neither is due
        assert (await first.user()).username == "alice"
        assert (await second.user()).username == "alice"
        assert first.verified() and second.verified()  # live lines may go to them directly
        now[0] = 1050.5  # both are due, 30 s after the answer of 1020: refused
        assert not first.verified()
        with pytest.raises(Unauthenticated):
            await first.user()
        # refused: no line goes to the connection directly, however recent the refusal
        assert not first.verified() and not first.due_for_check()
        with pytest.raises(Unauthenticated):
            await second.user()
