"""Running one build attempt of a version: the job body, shared by every queue.

A build proves it is alive by writing `heartbeat_at` every few seconds. The watchdog, which
runs in every API and worker process, fails builds whose heartbeat is older than
ENVYARD_STALE_BUILD_AFTER (their worker was killed). A build whose version stops being
BUILDING (cancelled, or declared stale) notices at its next heartbeat and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any, TypeVar

from packaging.utils import canonicalize_name
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.builders import BuildFailed, BuildRequest, BuildResult, Built
from app.db.models import Environment, Event, Installed, User, Version
from app.db.queries import append_log
from app.domain import access
from app.domain.errors import InvalidState
from app.domain.requirements import PackageManager, parse_libraries
from app.domain.statuses import (
    RUNNING_VERSION,
    Action,
    EnvironmentStatus,
    EventKind,
    VersionStatus,
    check_cancellable,
    transition,
)
from app.logbus import log_key
from app.services import events, retention
from app.services.environments import actor, facts, get_version, now, packages_of
from app.services.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

# How often a running build's new log lines are written to the database: a crash (a killed
# server or worker) loses at most this much of the log.
LOG_STORE_INTERVAL = 0.5
# How often a building process removes its host's copies of archived versions (an image
# another worker's engine built, pulled here).
FORGET_INTERVAL = 60.0


async def _request(version: Version, env: Environment) -> BuildRequest:
    previous = (
        await Version.filter(
            environment_id=env.id, number__lt=version.number, status=VersionStatus.SUCCEEDED
        )
        .order_by("-number")
        .first()
        if version.number > 1
        else None  # version 1 starts from nothing
    )
    pip = parse_libraries("pipLibraries", PackageManager.PIP, version.pip_libraries)
    conda = parse_libraries("condaLibraries", PackageManager.CONDA, version.conda_libraries)
    return BuildRequest(
        version_id=version.id,
        attempt=version.attempt,
        environment_id=env.id,
        organization=env.organization.name,
        short_name=env.short_name,
        number=version.number,
        python_version=env.python_version,
        base_environment=env.base_environment,
        pip_requirements=[lib.pip_requirement() for lib in pip],
        conda_requirements=[lib.conda_spec() for lib in conda],
        previous=None
        if previous is None or previous.location is None
        else Built(previous.location, packages_of(previous)),
    )


class _Log:
    """The attempt's lines: published on the log bus at once, stored in batches."""

    def __init__(self, rt: Runtime, version: Version) -> None:
        self.rt = rt
        self.version_id, self.attempt = version.id, version.attempt
        self.key = log_key(version.id, version.attempt)
        self.lines: list[str] = []
        self._stored = 0
        self._emitting = asyncio.Lock()

    async def emit(self, text: str) -> None:
        # One line at a time: steps running side by side (a venv made while uv resolves)
        # emit concurrently, and the Redis bus numbers a line before its write lands.
        async with self._emitting:
            for line in text.splitlines() or [""]:
                self.lines.append(line)
                await self.rt.logbus.append(self.key, line)

    async def store(self) -> None:
        """Append the lines not yet stored to the version's log in the database."""
        pending = self.lines[self._stored :]
        if pending:
            await append_log(self.version_id, self.attempt, pending)
            self._stored += len(pending)

    async def keep_storing(self) -> None:
        """Store new lines every LOG_STORE_INTERVAL while the build runs."""
        while True:
            await asyncio.sleep(LOG_STORE_INTERVAL)
            try:
                await self.store()
            except Exception as exc:  # the next round tries again; the end stores it all
                log.warning("storing the log of version %s failed: %s", self.version_id, exc)


async def _execute(rt: Runtime, version: Version, env: Environment, out: _Log) -> BuildResult:
    await out.emit(
        f"Build of {env.short_name} version {version.number} started ({rt.builder.kind} builder)"
    )
    async with asyncio.timeout(rt.settings.build_timeout):
        request = await _request(version, env)
        if version.reverted_from is None:
            return await rt.builder.build(request, out.emit)
        target = await Version.get(environment_id=env.id, number=version.reverted_from)
        await out.emit(f"Reverting to version {target.number}")
        if target.archived:
            result = await _restore(rt, request, target, out)
        else:
            try:
                result = await rt.builder.revert(
                    request, Built(target.location or "", packages_of(target)), out.emit
                )
            except BuildFailed:
                # Its files went meanwhile (archived after this revert read it)?
                target = await Version.get(id=target.id)
                if not target.archived:
                    raise
                result = await _restore(rt, request, target, out)
        # The same installed set: the same lock file.
        return replace(result, lockfile=target.lockfile or "", channels=target.channels or [])


async def _restore(rt: Runtime, request: BuildRequest, target: Version, out: _Log) -> BuildResult:
    """A revert to an archived version: its packages rebuilt exactly from its lock file."""
    await out.emit(
        f"Version {target.number} is archived (the retention policy removed its files): "
        "rebuilding it from its lock file"
    )
    exact = await retention.exact_packages(target)
    result = await rt.builder.build(replace(request, exact=exact), out.emit)
    return replace(result, restored_from=target.number)


async def _retrying(
    what: str, operation: Callable[[], Awaitable[T]], within: float, max_delay: float = 5.0
) -> T:
    """Run a database operation, retrying failures (a dropped connection, a failover) with
    backoff (at most `max_delay` apart) for up to `within` seconds; the last failure is
    raised."""
    deadline = time.monotonic() + within
    delay = 0.1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "%s failed (%s: %s); retrying in %.1f s", what, type(exc).__name__, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def _heartbeat(rt: Runtime, version_id: int, attempt: int) -> None:
    """Returns only when the database confirms that this attempt is no longer BUILDING.

    A failing heartbeat query says nothing about the build: it is retried until the database
    answers (meanwhile the watchdog may declare the build stale, which the answer then says).
    """
    while True:
        await asyncio.sleep(rt.settings.heartbeat_interval)
        alive = await _retrying(
            f"the heartbeat of version {version_id}",
            lambda: Version.filter(
                id=version_id, attempt=attempt, status=VersionStatus.BUILDING
            ).update(heartbeat_at=now()),
            within=float("inf"),
            # Never later than the next beat would have been: others judge staleness by it.
            max_delay=rt.settings.heartbeat_interval,
        )
        if not alive:
            return


async def run_build(rt: Runtime, version_id: int, attempt: int) -> None:
    """Build one attempt of a version. Safe to run twice: only a QUEUED attempt is claimed."""
    started = now()
    claimed = await Version.filter(
        id=version_id, attempt=attempt, status=VersionStatus.QUEUED
    ).update(status=VersionStatus.BUILDING, started_at=started, heartbeat_at=started)
    if claimed != 1:
        log.info("version %s attempt %s is not queued; nothing to do", version_id, attempt)
        return
    # one statement: the version, its environment and the environment's organization
    version = await Version.get(id=version_id).select_related("environment__organization")
    env = version.environment
    out = _Log(rt, version)
    work = asyncio.create_task(_execute(rt, version, env, out))
    alive = asyncio.create_task(_heartbeat(rt, version_id, attempt))
    storing = asyncio.create_task(out.keep_storing())
    try:
        await asyncio.wait({work, alive}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _stop(work, alive, storing)
        await _finish(
            rt,
            version,
            out,
            None,
            "it was stopped before it ended (its worker shut down)",
            within=5.0,
        )
        raise
    if not work.done():  # confirmed by the database: cancelled, or declared stale
        await _stop(work, alive, storing)
        return
    await _stop(alive, storing)
    result, failure = None, None
    try:
        result = work.result()
    except BuildFailed as exc:
        failure = str(exc)
    except TimeoutError:
        failure = f"it ran longer than {rt.settings.build_timeout:g} s (ENVYARD_BUILD_TIMEOUT)"
    except Exception as exc:
        log.exception("build of version %s failed unexpectedly", version_id)
        failure = f"internal error ({type(exc).__name__}: {exc})"
    recorded = await _finish(rt, version, out, result, failure)
    if result is not None:
        # the policy first: it keeps the version just built (the newest succeeded one)
        await retention.after_build(rt, version.environment_id)
        if recorded and result.size_bytes is None:
            await _measure(rt, version, result.location)


async def _measure(rt: Runtime, version: Version, location: str) -> None:
    """Record the size of a version the builder left unsaid, after its build's end: walking
    a prefix of thousands of files is no reason to make its log wait. A failure leaves the
    size unknown (null), never the build failed."""
    try:
        size = await rt.builder.measure(location)
        if size is not None:  # unless archived meanwhile (the archive records what it freed)
            await Version.filter(
                id=version.id,
                attempt=version.attempt,
                status=VersionStatus.SUCCEEDED,
                archived=False,
                size_bytes__isnull=True,
            ).update(size_bytes=size)
    except Exception as exc:
        log.warning("measuring version %s failed (%s)", version.id, exc)


async def _stop(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _finish(
    rt: Runtime,
    version: Version,
    out: _Log,
    result: BuildResult | None,
    failure: str | None,
    within: float | None = None,
) -> bool:
    """Record the attempt's end; whether this call recorded it (a cancellation or a stale
    verdict may have ended it first)."""
    last = (
        f"Build succeeded: version {version.number} is ready"
        if result
        else f"Build failed: {failure}"
    )
    # The line is kept for the database first; publishing it (Redis in the distributed mode)
    # may fail without losing what the build did.
    with contextlib.suppress(Exception):
        await out.emit(last)
    action = Action.BUILD_SUCCEEDED if result is not None else Action.BUILD_FAILED
    if within is None:
        within = max(rt.settings.stale_build_after, 30.0)

    recorded: list[Event] = []
    ended = False

    async def record() -> None:
        nonlocal ended
        recorded.clear()
        async with in_transaction():
            updated = await Version.filter(
                id=version.id, attempt=version.attempt, status=VersionStatus.BUILDING
            ).update(
                status=VersionStatus.SUCCEEDED if result is not None else VersionStatus.FAILED,
                packages=[asdict(p) | {"manager": p.manager.value} for p in result.packages]
                if result is not None
                else [],
                location=result.location if result is not None else None,
                size_bytes=result.size_bytes if result is not None else None,
                archived=False,
                lockfile=result.lockfile if result is not None else None,
                channels=result.channels if result is not None else None,
                log="\n".join(out.lines),
                finished_at=now(),
            )
            if not updated:
                return
            ended = True
            await _environment_after_build(version.environment_id, action)
            if result is None:
                recorded.append(
                    await events.record(
                        version.environment_id,
                        EventKind.BUILD_FAILED,
                        number=version.number,
                        note=failure,
                    )
                )
                return
            await _index_packages(version, result)
            recorded.append(
                await events.record(
                    version.environment_id, EventKind.BUILD_SUCCEEDED, number=version.number
                )
            )
            if result.restored_from is not None:
                recorded.append(
                    await events.record(
                        version.environment_id,
                        EventKind.RESTORED,
                        number=version.number,
                        note=f"version {result.restored_from} rebuilt from its lock file",
                    )
                )

    # Until the stale bound, nobody else decides this build's fate: keep trying to record it
    # (a process shutting down gives it a few seconds).
    await _retrying(f"recording the end of version {version.id}", record, within=within)
    # Committed: the log's followers may ask for the version's new state.
    with contextlib.suppress(Exception):
        await rt.logbus.close(out.key)
    await events.publish(rt.events, recorded)
    return ended


async def _index_packages(version: Version, result: BuildResult) -> None:
    """The new active version's packages, searchable (installed_package); the previous
    active version's rows stay, no longer active."""
    await Installed.filter(environment_id=version.environment_id, active=True).update(active=False)
    await Installed.bulk_create(
        [
            Installed(
                version_id=version.id,
                environment_id=version.environment_id,
                manager=p.manager.value,
                name=canonicalize_name(p.name),
                version_text=p.version,
                active=True,
            )
            for p in result.packages
        ]
    )


async def _environment_after_build(env_id: int, action: Action) -> None:
    await Environment.filter(id=env_id, status=EnvironmentStatus.IN_PROGRESS).update(
        status=transition(action, EnvironmentStatus.IN_PROGRESS), updated_at=now()
    )


async def fail_versions(
    rt: Runtime,
    versions: Sequence[Version],
    reason: str,
    *,
    if_stalled: bool = False,
    cancelled_by: User | None = None,
) -> int:
    """Fail queued or building versions from outside their build; returns how many.

    With `if_stalled`, a version is failed only if its heartbeat is still the one it was
    read with: a build that proved alive meanwhile is left alone. A cancellation is the
    event BUILD_CANCELLED by `cancelled_by`, any other failure BUILD_FAILED by the system.
    """
    failed = 0
    for version in versions:
        key = log_key(version.id, version.attempt)
        lines = await rt.logbus.lines(key)
        # The log bus holds every line of a build it carries; the database, every line stored
        # before its build stopped (a killed server's memory bus is gone).
        text = "\n".join(lines) if lines else version.log
        note = f"Build failed: {reason}"
        condition: dict[str, Any] = {"heartbeat_at": version.heartbeat_at} if if_stalled else {}
        async with in_transaction():
            updated = await Version.filter(
                id=version.id, attempt=version.attempt, status__in=RUNNING_VERSION, **condition
            ).update(
                status=VersionStatus.FAILED,
                log=f"{text}\n{note}" if text else note,
                finished_at=now(),
            )
            if updated:
                await _environment_after_build(version.environment_id, Action.BUILD_FAILED)
                event = await events.record(
                    version.environment_id,
                    EventKind.BUILD_FAILED if cancelled_by is None else EventKind.BUILD_CANCELLED,
                    actor_id=None if cancelled_by is None else cancelled_by.id,
                    number=version.number,
                    note=reason,
                )
        if updated:
            await events.publish(rt.events, [event])
            failed += 1
            await rt.logbus.finish(key, note)
    return failed


async def recover_builds(rt: Runtime) -> int:
    """Standalone start: what a previous server left behind; returns how many were failed.

    A running build is interrupted only if its heartbeat stops: the builds running before
    anything is queued here are watched for two heartbeat intervals, and failed if nothing
    wrote their heartbeat meanwhile. The mere start of a process says nothing: a server that
    still runs keeps writing heartbeats. Queued builds are queued again (claiming is
    atomic: a build queued twice runs once). A failing database is retried.
    """
    while True:
        try:
            return await _recover(rt)
        except Exception as exc:
            log.warning("recovering the builds of a previous start failed (%s); retrying", exc)
            await asyncio.sleep(rt.settings.heartbeat_interval)


async def _recover(rt: Runtime) -> int:
    # Read before queueing: a build this process claims meanwhile is not among them.
    building = await Version.filter(status=VersionStatus.BUILDING)
    for version in await Version.filter(status=VersionStatus.QUEUED):
        await rt.queue.enqueue(version.id, version.attempt)
    seen = {(v.id, v.attempt): v.heartbeat_at for v in building}
    if not seen:
        return 0
    await asyncio.sleep(2 * rt.settings.heartbeat_interval + 0.5)
    still = await Version.filter(id__in=[v.id for v in building], status=VersionStatus.BUILDING)
    stalled = [v for v in still if seen.get((v.id, v.attempt), "gone") == v.heartbeat_at]
    return await fail_versions(rt, stalled, INTERRUPTED, if_stalled=True)


INTERRUPTED = "the server stopped while this build was running"


async def fail_stale(rt: Runtime) -> int:
    """Fail builds whose worker (standalone: server) stopped writing heartbeats."""
    bound = rt.settings.stale_build_after
    cutoff = now() - timedelta(seconds=bound)
    stale = await Version.filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff),
        status=VersionStatus.BUILDING,
    )
    if rt.settings.redis_url:
        reason = f"its worker stopped responding (no heartbeat for {bound:g} s); build again"
    else:
        reason = INTERRUPTED
    return await fail_versions(rt, stale, reason, if_stalled=True)


async def is_building(version_id: int, attempt: int | None) -> bool:
    """Whether that attempt (any, when not known) of the version is still BUILDING."""
    query = Version.filter(id=version_id, status=VersionStatus.BUILDING)
    if attempt is not None:
        query = query.filter(attempt=attempt)
    return await query.exists()


async def reconcile_once(rt: Runtime) -> None:
    """Remove what builds that no longer run left behind (a killed process's containers)."""
    try:
        await rt.builder.reconcile(is_building)
    except Exception as exc:
        log.warning("removing what stopped builds left behind failed (%s); trying again", exc)


async def watch_leftovers(rt: Runtime) -> None:
    """At start and every heartbeat interval, in every process that builds.

    A build cancelled or declared stale while its process lives removes its own container;
    this loop is for builds whose process was killed (it finds them once the watchdog has
    failed them), on any process sharing the build's Docker engine.
    """
    forgotten = float("-inf")
    while True:
        await reconcile_once(rt)
        if time.monotonic() - forgotten >= FORGET_INTERVAL:
            forgotten = time.monotonic()
            try:
                await retention.forget_archived(rt.builder)
            except Exception as exc:
                log.warning("removing the copies of archived versions failed (%s)", exc)
        await asyncio.sleep(rt.settings.heartbeat_interval)


async def watch_stale(rt: Runtime) -> None:
    """The watchdog loop; every API and worker process runs one."""
    while True:
        await asyncio.sleep(rt.settings.heartbeat_interval)
        try:
            count = await fail_stale(rt)
        except Exception as exc:  # a database outage: say so once a round, no traceback
            log.warning("the stale-build watchdog failed (%s); trying again", exc)
            continue
        if count:
            log.warning("failed %d build(s) whose worker stopped responding", count)


async def cancel_build(rt: Runtime, user: User, version_id: str) -> Version:
    version = await get_version(user, version_id)
    access.require_creator(actor(user), facts(version.environment), "cancel builds of")
    check_cancellable(version.status)
    if not await fail_versions(rt, [version], f"cancelled by {user.username}", cancelled_by=user):
        raise InvalidState("This build ended while it was being cancelled.")
    with contextlib.suppress(Exception):  # the heartbeat check stops it anyway
        await rt.queue.cancel(version.id, version.attempt)
    return await Version.get(id=version.id)
