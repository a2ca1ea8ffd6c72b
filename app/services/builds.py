"""Running one build attempt of a version: the job body, shared by every queue."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict

from tortoise.transactions import in_transaction

from app.builders import BuildFailed, BuildRequest, BuildResult, Built
from app.db.models import Environment, Version
from app.domain.requirements import PackageManager, parse_libraries
from app.domain.statuses import Action, EnvironmentStatus, VersionStatus, transition
from app.logbus import log_key
from app.services.environments import now, packages_of
from app.services.runtime import Runtime

log = logging.getLogger(__name__)


async def _request(version: Version, env: Environment) -> BuildRequest:
    previous = (
        await Version.filter(
            environment_id=env.id, number__lt=version.number, status=VersionStatus.SUCCEEDED
        )
        .order_by("-number")
        .first()
    )
    await env.fetch_related("organization")
    pip = parse_libraries("pipLibraries", PackageManager.PIP, version.pip_libraries)
    conda = parse_libraries("condaLibraries", PackageManager.CONDA, version.conda_libraries)
    return BuildRequest(
        version_id=version.id,
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


async def run_build(rt: Runtime, version_id: int, attempt: int) -> None:
    """Build one attempt of a version. Safe to run twice: only a QUEUED attempt is claimed."""
    claimed = await Version.filter(
        id=version_id, attempt=attempt, status=VersionStatus.QUEUED
    ).update(status=VersionStatus.BUILDING, started_at=now())
    if claimed != 1:
        log.info("version %s attempt %s is not queued; nothing to do", version_id, attempt)
        return
    version = await Version.get(id=version_id).prefetch_related("environment")
    env = version.environment
    key = log_key(version_id, attempt)
    lines: list[str] = []

    async def emit(text: str) -> None:
        for line in text.splitlines() or [""]:
            lines.append(line)
            await rt.logbus.append(key, line)

    result: BuildResult | None = None
    try:
        await emit(
            f"Build of {env.short_name} version {version.number} started "
            f"({rt.builder.kind} builder)"
        )
        async with asyncio.timeout(rt.settings.build_timeout):
            request = await _request(version, env)
            if version.reverted_from is not None:
                target = await Version.get(environment_id=env.id, number=version.reverted_from)
                await emit(f"Reverting to version {target.number}")
                result = await rt.builder.revert(
                    request, Built(target.location or "", packages_of(target)), emit
                )
            else:
                result = await rt.builder.build(request, emit)
        await emit(f"Build succeeded: version {version.number} is ready")
    except BuildFailed as exc:
        await emit(f"Build failed: {exc}")
    except TimeoutError:
        await emit(
            f"Build failed: it ran longer than {rt.settings.build_timeout:g} s "
            "(ENVYARD_BUILD_TIMEOUT)"
        )
    except asyncio.CancelledError:
        await _finish(
            rt,
            version,
            env,
            lines,
            None,
            "Build failed: it was cancelled because the server is stopping",
        )
        raise
    except Exception as exc:
        log.exception("build of version %s failed unexpectedly", version_id)
        await emit(f"Build failed: internal error ({type(exc).__name__}: {exc})")
    await _finish(rt, version, env, lines, result, None)


async def _finish(
    rt: Runtime,
    version: Version,
    env: Environment,
    lines: list[str],
    result: BuildResult | None,
    last_line: str | None,
) -> None:
    key = log_key(version.id, version.attempt)
    if last_line is not None:
        lines.append(last_line)
        await rt.logbus.append(key, last_line)
    succeeded = result is not None
    action = Action.BUILD_SUCCEEDED if succeeded else Action.BUILD_FAILED
    async with in_transaction():
        await Version.filter(
            id=version.id, attempt=version.attempt, status=VersionStatus.BUILDING
        ).update(
            status=VersionStatus.SUCCEEDED if succeeded else VersionStatus.FAILED,
            packages=[asdict(p) | {"manager": p.manager.value} for p in result.packages]
            if result
            else [],
            location=result.location if result else None,
            log="\n".join(lines),
            finished_at=now(),
        )
        await Environment.filter(id=env.id, status=EnvironmentStatus.IN_PROGRESS).update(
            status=transition(action, EnvironmentStatus.IN_PROGRESS), updated_at=now()
        )
    await rt.logbus.close(key)


async def fail_interrupted(rt: Runtime, reason: str) -> int:
    """Mark builds that cannot finish any more (their process is gone) as failed."""
    stale = await Version.filter(
        status__in=[VersionStatus.QUEUED, VersionStatus.BUILDING]
    ).prefetch_related("environment")
    for version in stale:
        note = f"Build failed: {reason}"
        log_text = f"{version.log}\n{note}" if version.log else note
        async with in_transaction():
            updated = await Version.filter(
                id=version.id, attempt=version.attempt, status=version.status
            ).update(status=VersionStatus.FAILED, log=log_text, finished_at=now())
            if updated:
                await Environment.filter(
                    id=version.environment_id, status=EnvironmentStatus.IN_PROGRESS
                ).update(
                    status=transition(Action.BUILD_FAILED, EnvironmentStatus.IN_PROGRESS),
                    updated_at=now(),
                )
    return len(stale)
