"""The admin's review tools through the services, with a controlled clock (SQLite and
PostgreSQL): policy blocking approval, comparison, package search, usage, deprecation
candidates and the events of the whole lifecycle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app.db.models import Environment, Policy, User
from app.domain.errors import Forbidden, InvalidState
from app.domain.statuses import EnvironmentStatus, EventKind
from app.services import environments as envs
from app.services import events, governance, policies
from app.services.clock import controlled
from app.services.runtime import Runtime, database, open_runtime
from app.services.users import add_user
from app.settings import Settings
from tests.support.server import database_url


async def _built(rt: Runtime, user: User, short: str, pip: list[str]) -> Environment:
    data = envs.EnvironmentData(short, short.upper(), None, None, "3.11", [], pip)
    env = await envs.create_environment(rt, user, data)
    await envs.build_environment(rt, user, str(env.id))
    for _ in range(600):
        env = await envs.get_environment(user, env.id)
        if env.status is not EnvironmentStatus.IN_PROGRESS:
            break
        await asyncio.sleep(0.05)
    assert env.status is EnvironmentStatus.DRAFT
    return env


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_review_tools(backend, tmp_path, index_url):
    for url in database_url(backend, tmp_path):
        settings = Settings.from_env(
            {
                "ENVYARD_DATA_DIR": str(tmp_path / "data"),
                "ENVYARD_DATABASE_URL": url,
                "ENVYARD_INDEX_URL": index_url,
            }
        )
        EXECUTOR_CACHE.clear()  # see tests/services/test_logs.py
        async with database(settings), open_runtime(settings, "api") as rt:
            alice, _ = await add_user("acme", "alice", admin=False)
            bob, _ = await add_user("acme", "bob", admin=False)
            carol, _ = await add_user("acme", "carol", admin=True)
            stranger, _ = await add_user("other", "dave", admin=True)
            start = datetime(2026, 1, 1, tzinfo=UTC)
            clock = [start]
            with controlled(lambda: clock[0]):  # noqa: B023 (read while this iteration runs)
                old = await _built(rt, alice, "old", ["yard-alpha==1.0"])
                await envs.submit_environment(rt, alice, str(old.id))
                await envs.approve_environment(rt, carol, str(old.id))
                # A published environment is not compared with itself.
                published = (await envs.get_environment(carol, old.id)).versions[0]
                assert await governance.compare_with_published(carol, str(published.id)) == []

                # A policy blocks the next one until the admin acknowledges it.
                with pytest.raises(Forbidden):
                    await policies.set_policy(bob, ["yard-alpha<2"])
                await policies.set_policy(carol, ["yard-alpha<2"])
                new = await _built(rt, alice, "new", ["yard-alpha==1.0"])
                await envs.submit_environment(rt, alice, str(new.id))
                with pytest.raises(
                    InvalidState, match=r"yard-alpha 1\.0 \(pip\) matches 'yard-alpha<2'"
                ):
                    await envs.approve_environment(rt, carol, str(new.id))
                assert (await Environment.get(id=new.id)).status is (
                    EnvironmentStatus.PENDING_APPROVAL
                )
                version = (await envs.get_environment(carol, new.id)).versions[0]
                # A policy stored before duplicates were refused is still read, once per rule.
                await Policy.filter(organization_id=carol.organization_id).update(
                    blocked_packages=["yard-alpha<2", "Yard_Alpha <2"]
                )
                [found] = await policies.violations_for([version])
                assert [v.rule for v in found] == ["yard-alpha<2"]
                await policies.set_policy(carol, ["yard-alpha<2"])
                compared = await governance.compare_with_published(carol, str(version.id))
                assert [(c.environment_id, c.similarity.similarity) for c in compared] == [
                    (old.id, 1.0)
                ]
                assert compared[0].changes() == []
                with pytest.raises(Forbidden):  # bob sees "old", but it is not his
                    await governance.compare_with_published(bob, str(old.versions[0].id))
                clock[0] = start + timedelta(days=10)
                await envs.approve_environment(rt, carol, str(new.id), acknowledge_violations=True)

                found = await governance.versions_with_package(carol, "Yard_Alpha", "<2")
                assert sorted(v.environment_id for v in found) == sorted([old.id, new.id])
                assert await governance.versions_with_package(stranger, "yard-alpha", None) == []
                assert await governance.versions_with_package(carol, "yard-alpha", ">=2") == []

                # Usage and deprecation candidates, 100 days on.
                clock[0] = start + timedelta(days=100)
                await envs.activate_environment(rt, bob, str(old.id))
                await envs.activate_environment(rt, bob, str(old.id))
                await envs.activate_environment(rt, alice, str(old.id))
                (used,) = await events.usage([old.id])
                assert (used.activations, used.users) == (3, 2)
                assert used.last_activated_at == clock[0]
                candidates = await governance.deprecation_candidates(carol, 80)
                assert [e.short_name for e in candidates] == ["new"]  # published 90 days ago
                assert await governance.deprecation_candidates(carol, 91) == []
                with pytest.raises(Forbidden):
                    await governance.deprecation_candidates(bob, 90)

            (timeline,) = await events.of_environments([new.id])
            assert [e.kind for e in timeline] == [
                EventKind.CREATED,
                EventKind.BUILD_QUEUED,
                EventKind.BUILD_SUCCEEDED,
                EventKind.SUBMITTED,
                EventKind.APPROVED,
            ]
            assert timeline[-1].actor_id == carol.id
            assert "acknowledged policy violations: yard-alpha 1.0" in (timeline[-1].note or "")
            assert [e.kind for e in await events.latest(stranger, 100)] == []
            # bob sees the published environments' events, newest first.
            seen = await events.latest(bob, 100)
            assert seen[0].kind is EventKind.ACTIVATED and seen[0].actor_id == alice.id
            assert {e.environment_id for e in seen} == {old.id, new.id}
