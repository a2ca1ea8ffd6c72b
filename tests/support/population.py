"""Many environments written straight into the database, as builds and reviews would have left
them: for query-count tests and the governance benchmark, where building each one is not
the point.

Every environment has `versions` SUCCEEDED versions (one by default) with `packages`
installed (drawn from a pool of names, at one of three versions, a tenth of them conda's),
the last one indexed in installed_package as the active version (and the published one, for
published environments); CREATED, BUILD_SUCCEEDED and (for published ones) APPROVED events;
every third published one was activated by its creator."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from packaging.utils import canonicalize_name

from app.db.models import Environment, Event, Installed, User, Version
from app.domain.statuses import EnvironmentStatus, EventKind, VersionStatus

POOL = [f"lib-{i:03d}" for i in range(300)]
BATCH = 2000
START = datetime(2026, 1, 1, tzinfo=UTC)


def installed_set(seed: int, packages: int) -> list[dict[str, str]]:
    """An environment's packages, the same for the same seed."""
    draw = random.Random(seed)
    return [
        {
            "name": name,
            "version": f"1.{draw.randrange(3)}",
            "manager": "CONDA" if int(name[-3:]) % 10 == 0 else "PIP",
        }
        for name in sorted(draw.sample(POOL, packages))
    ]


async def populate(
    creators: Sequence[User],
    count: int,
    *,
    published: int,
    packages: int,
    prefix: str = "p",
    seed: int = 0,
    versions: int = 1,
) -> list[int]:
    """`count` environments of the creators' organization (short names prefix + 4 digits),
    the first `published` of them PUBLISHED, the rest DRAFT; their ids, in order."""
    assert len(prefix) == 1 and count <= 10_000
    org_id = creators[0].organization_id
    names = [f"{prefix}{i:04d}" for i in range(count)]
    await Environment.bulk_create(
        [
            Environment(
                organization_id=org_id,
                creator_id=creators[i % len(creators)].id,
                short_name=name,
                full_name=f"Population {i}",
                description="published" if i < published else "a draft",
                python_version="3.11",
                pip_libraries=[],
                status=EnvironmentStatus.PUBLISHED if i < published else EnvironmentStatus.DRAFT,
                submitted_number=versions if i < published else None,
                published_number=versions if i < published else None,
                published_at=START if i < published else None,
                submitted_at=START if i < published else None,
            )
            for i, name in enumerate(names)
        ],
        batch_size=BATCH,
    )
    by_name = dict(
        await Environment.filter(organization_id=org_id, short_name__in=names).values_list(
            "short_name", "id"
        )
    )
    env_ids = [int(by_name[name]) for name in names]
    sets = [installed_set(seed * 100_000 + i, packages) for i in range(count)]
    await Version.bulk_create(
        [
            Version(
                environment_id=env_id,
                number=number,
                status=VersionStatus.SUCCEEDED,
                pip_libraries=[p["name"] for p in found if p["manager"] == "PIP"],
                conda_libraries=[p["name"] for p in found if p["manager"] == "CONDA"],
                packages=found if number == versions else _earlier(found, number),
                finished_at=START,
            )
            for env_id, found in zip(env_ids, sets, strict=True)
            for number in range(1, versions + 1)
        ],
        batch_size=BATCH,
    )
    version_of = dict(
        await Version.filter(environment_id__in=env_ids, number=versions).values_list(
            "environment_id", "id"
        )
    )
    await Installed.bulk_create(
        [
            Installed(
                version_id=version_of[env_id],
                environment_id=env_id,
                manager=p["manager"],
                name=canonicalize_name(p["name"]),
                version_text=p["version"],
                active=True,
            )
            for env_id, found in zip(env_ids, sets, strict=True)
            for p in found
        ],
        batch_size=BATCH,
    )
    events: list[Event] = []
    for i, env_id in enumerate(env_ids):
        creator = creators[i % len(creators)].id
        at = START + timedelta(seconds=i)
        events.append(Event(environment_id=env_id, at=at, kind=EventKind.CREATED, actor_id=creator))
        events += [
            Event(environment_id=env_id, at=at, kind=EventKind.BUILD_SUCCEEDED, version_number=n)
            for n in range(1, versions + 1)
        ]
        if i < published:
            events.append(
                Event(
                    environment_id=env_id, at=at, kind=EventKind.APPROVED, version_number=versions
                )
            )
            if i % 3 == 0:
                events.append(
                    Event(
                        environment_id=env_id,
                        at=at,
                        kind=EventKind.ACTIVATED,
                        actor_id=creator,
                        version_number=versions,
                    )
                )
    await Event.bulk_create(events, batch_size=BATCH)
    return env_ids


def _earlier(found: list[dict[str, str]], number: int) -> list[dict[str, str]]:
    """An earlier version's packages: the same names, some at an older release."""
    return [{**p, "version": "0.9"} if (i + number) % 5 == 0 else p for i, p in enumerate(found)]
