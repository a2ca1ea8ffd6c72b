"""Token lookups shared by a process's callers (app/services/users.py TokenChecks): callers
in one moment share one query, and no answer is older than its caller allows."""

from __future__ import annotations

import asyncio

import pytest

from app.services.users import TokenChecks, add_user, new_user_token
from tests.support.runtime import api_runtime
from tests.support.statements import counting


def names(users):
    return [None if u is None else u.username for u in users]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_callers_of_one_moment_share_a_query(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path):
        _, alice = await add_user("acme", "alice", admin=False)
        _, bob = await add_user("acme", "bob", admin=False)
        checks = TokenChecks()
        asked = [alice, bob, "ey_unknown"] * 300
        with counting(monkeypatch) as sent:
            found = await asyncio.gather(*(checks.user(token) for token in asked))
        assert names(found) == ["alice", "bob", None] * 300
        assert sum(sent.values()) == 1
        # 600 tokens at once: BATCH (500) a query
        many = [f"ey_other{i}" for i in range(600)]
        with counting(monkeypatch) as sent:
            found = await asyncio.gather(*(checks.user(token) for token in many))
        assert found == [None] * 600 and sum(sent.values()) == 2
        # a malformed token is never looked up
        with counting(monkeypatch) as sent:
            assert await checks.user("é" * 3) is None and await checks.user("x" * 201) is None
            assert await checks.user("") is None and await checks.user(None) is None
        assert sum(sent.values()) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_an_answer_is_never_older_than_its_caller_allows(backend, tmp_path, monkeypatch):
    async with api_runtime(backend, tmp_path):
        _, token = await add_user("acme", "alice", admin=False)
        checks = TokenChecks()
        assert names([await checks.user(token)]) == ["alice"]
        with counting(monkeypatch) as sent:
            assert names([await checks.user(token, 30)]) == ["alice"]  # the answer above
        assert sum(sent.values()) == 0
        await new_user_token("acme", "alice")  # the token rotated
        # allowed 30 s: the answer of a moment ago still stands; asked afresh: refused
        assert names([await checks.user(token, 30)]) == ["alice"]
        assert await checks.user(token) is None
        assert await checks.user(token, 30) is None  # the newest answer is kept
        await asyncio.sleep(0.05)
        with counting(monkeypatch) as sent:
            assert await checks.user(token, 0.01) is None  # older than allowed: asked again
        assert sum(sent.values()) == 1


async def test_a_cancelled_caller_leaves_the_answer_to_the_others(tmp_path):
    async with api_runtime("sqlite", tmp_path):
        _, token = await add_user("acme", "alice", admin=False)
        checks = TokenChecks()
        first = asyncio.ensure_future(checks.user(token))
        second = asyncio.ensure_future(checks.user(token))
        await asyncio.sleep(0)  # both wait for the same lookup
        first.cancel()
        assert names([await second]) == ["alice"]
        with pytest.raises(asyncio.CancelledError):
            await first
