"""Environment events: written in the transaction of the change they record, published on
the event bus once it has committed, read back for timelines, usage and dashboards."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Subquery
from tortoise.functions import Count, Max

from app.db.models import Environment, Event, User
from app.domain import access
from app.domain.errors import BadUserInput
from app.domain.statuses import EnvironmentStatus, EventKind
from app.eventbus import EventBus, Payload
from app.services.clock import now
from app.services.visibility import actor, visible_to

log = logging.getLogger(__name__)

MAX_EVENTS = 500


async def record(
    env_id: int,
    kind: EventKind,
    *,
    actor_id: int | None = None,
    number: int | None = None,
    note: str | None = None,
) -> Event:
    """Write one event; call it inside the transaction that makes the change."""
    return await Event.create(
        environment_id=env_id,
        at=now(),
        kind=kind,
        actor_id=actor_id,
        version_number=number,
        note=note,
    )


def payload(event: Event, env: Environment) -> Payload:
    """An event as the bus carries it: with what decides who may see it, as of now."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind.value,
        "environment_id": event.environment_id,
        "actor_id": event.actor_id,
        "version_number": event.version_number,
        "note": event.note,
        "organization_id": env.organization_id,
        "creator_id": env.creator_id,
        "status": env.status.value,
        "submitted": env.submitted_number is not None,
        "published": env.published_number is not None,
    }


async def publish(
    bus: EventBus | None, events: Iterable[Event], env: Environment | None = None
) -> None:
    """Send committed events to live subscribers. A failure is logged: the events are in
    the database, and only a dashboard's live view misses them. `env`: their environment
    as the transaction that recorded them left it (else it is read)."""
    pending = [e for e in events if e is not None]
    if bus is None or not pending:
        return
    try:
        ids = {e.environment_id for e in pending}
        if env is not None and ids == {env.id}:
            envs = {env.id: env}
        else:
            envs = {env.id: env for env in await Environment.filter(id__in=ids)}
        for event in pending:
            env = envs.get(event.environment_id)
            if env is not None:  # deleted meanwhile
                await bus.publish(payload(event, env))
    except Exception as exc:
        log.warning("publishing %d event(s) failed (%s)", len(pending), exc)


def from_payload(data: Payload) -> Event:
    """The event a payload carries, unsaved (for the GraphQL type)."""
    return Event(
        id=data["id"],
        environment_id=data["environment_id"],
        at=datetime.fromisoformat(data["at"]),
        kind=EventKind(data["kind"]),
        actor_id=data["actor_id"],
        version_number=data["version_number"],
        note=data["note"],
    )


def visible(user: User, data: Payload) -> bool:
    facts = access.EnvironmentFacts(
        organization_id=data["organization_id"],
        creator_id=data["creator_id"],
        status=EnvironmentStatus(data["status"]),
        submitted=data["submitted"],
        published=data["published"],
    )
    return access.can_view(actor(user), facts)


async def follow(bus: EventBus, user: User) -> AsyncIterator[Event]:
    """Every event from now on that the user may see (as the environment is after it)."""
    async for data in bus.subscribe():
        if visible(user, data):
            yield from_payload(data)


async def latest(user: User, first: int) -> list[Event]:
    """The newest events of environments the user may see, newest first."""
    if not 1 <= first <= MAX_EVENTS:
        raise BadUserInput("first", f"first must be between 1 and {MAX_EVENTS}.")
    visible_ids = Subquery(Environment.filter(visible_to(user)).values("id"))
    return await Event.filter(environment_id__in=visible_ids).order_by("-id").limit(first)


async def of_environments(env_ids: Sequence[int]) -> list[list[Event]]:
    """Each environment's events, oldest first (one query for all)."""
    rows = await Event.filter(environment_id__in=list(env_ids)).order_by("id")
    grouped: dict[int, list[Event]] = {}
    for event in rows:
        grouped.setdefault(event.environment_id, []).append(event)
    return [grouped.get(env_id, []) for env_id in env_ids]


@dataclass(frozen=True, slots=True)
class Usage:
    activations: int
    users: int
    last_activated_at: datetime | None


async def usage(env_ids: Sequence[int]) -> list[Usage]:
    """Activations of each environment, from its ACTIVATED events (one query for all)."""
    rows = (
        await Event.filter(environment_id__in=list(env_ids), kind=EventKind.ACTIVATED)
        .group_by("environment_id")
        .annotate(activations=Count("id"), users=Count("actor_id", distinct=True), last=Max("at"))
        .values("environment_id", "activations", "users", "last")
    )
    by_env = {int(r["environment_id"]): r for r in rows}
    out = []
    for env_id in env_ids:
        row = by_env.get(env_id)
        if row is None:
            out.append(Usage(0, 0, None))
        else:
            out.append(Usage(int(row["activations"]), int(row["users"]), _aware(row["last"])))
    return out


def _aware(value: datetime | str | None) -> datetime | None:
    """An aggregate's time as a datetime (SQLite returns MAX() of a column as text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)
