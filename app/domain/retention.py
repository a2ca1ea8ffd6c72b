"""The retention policy: which successful versions keep their built files.

With ENVYARD_KEEP_VERSIONS=N, an environment keeps the files of its N latest successful
versions, and always those of the versions that may be handed out or asked for: the active
one (the latest success: activation, the next build's start), the submitted and published
ones, and a version a queued or running revert goes back to. Files that a kept version
shares (a revert reuses its target's) stay too. The others are archived: their files go,
their record and lock file stay, and a revert to one rebuilds it from that lock file.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from app.domain.errors import BadUserInput
from app.domain.statuses import VersionStatus


@dataclass(frozen=True, slots=True)
class Held:
    """What the policy knows of a version."""

    number: int
    status: VersionStatus
    archived: bool
    location: str | None
    reverted_from: int | None = None


def check_keep(keep: int) -> int:
    if keep < 1:
        raise BadUserInput(
            "keep",
            "The number of versions to keep must be at least 1 (the active version always "
            f"stays), not {keep}.",
        )
    return keep


def to_archive(
    versions: Sequence[Held], keep: int, pinned: Collection[int | None] = ()
) -> list[Held]:
    """The versions whose files the policy removes now, oldest first. `pinned`: numbers
    that must keep their files whatever their age (submitted, published)."""
    check_keep(keep)
    succeeded = sorted(
        (v for v in versions if v.status is VersionStatus.SUCCEEDED),
        key=lambda v: v.number,
        reverse=True,
    )
    kept = {v.number for v in succeeded[:keep]}  # the latest first: the active one is kept
    kept |= {n for n in pinned if n is not None}
    kept |= {
        v.reverted_from
        for v in versions
        if v.reverted_from is not None
        and v.status in (VersionStatus.QUEUED, VersionStatus.BUILDING)
    }
    kept_locations = {v.location for v in versions if v.number in kept and v.location}
    return sorted(
        (
            v
            for v in succeeded
            if v.number not in kept and not v.archived and v.location not in kept_locations
        ),
        key=lambda v: v.number,
    )
