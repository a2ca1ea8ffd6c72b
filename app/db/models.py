"""Tortoise models: fields and relations only; rules live in app.domain."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.domain.statuses import EnvironmentStatus, EventKind, VersionStatus


class Organization(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organization"


class User(Model):
    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="users", on_delete=fields.CASCADE
    )
    organization_id: int
    username = fields.CharField(max_length=64)
    is_admin = fields.BooleanField(default=False)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user"
        unique_together = (("organization", "username"),)


class Environment(Model):
    id = fields.IntField(primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "models.Organization", related_name="environments", on_delete=fields.CASCADE
    )
    organization_id: int
    creator: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="environments", on_delete=fields.CASCADE
    )
    creator_id: int
    short_name = fields.CharField(max_length=5)
    full_name = fields.CharField(max_length=100)
    description = fields.TextField(null=True)
    base_environment = fields.CharField(max_length=64, null=True)
    python_version = fields.CharField(max_length=8)
    conda_libraries: fields.Field[list[str]] = fields.JSONField(default=list)
    pip_libraries: fields.Field[list[str]] = fields.JSONField(default=list)
    status = fields.CharEnumField(EnvironmentStatus, max_length=20, default=EnvironmentStatus.SAVED)
    review_feedback = fields.TextField(null=True)
    # Version numbers, not foreign keys: successful versions keep their number for good.
    submitted_number = fields.IntField(null=True)
    published_number = fields.IntField(null=True)
    # When an admin last approved a version (deprecation candidates count from it).
    published_at = fields.DatetimeField(null=True)
    # When it was last submitted: the review queue's order (a page's cursor stays valid
    # when the environment leaves the queue, unlike updated_at).
    submitted_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    versions: fields.ReverseRelation[Version]

    class Meta:
        table = "environment"
        unique_together = (("organization", "short_name"),)


class Version(Model):
    id = fields.IntField(primary_key=True)
    environment: fields.ForeignKeyRelation[Environment] = fields.ForeignKeyField(
        "models.Environment", related_name="versions", on_delete=fields.CASCADE
    )
    environment_id: int
    number = fields.IntField()
    # Each build of this number is a new attempt; logs and jobs are keyed by it.
    attempt = fields.IntField(default=1)
    status = fields.CharEnumField(VersionStatus, max_length=12, default=VersionStatus.QUEUED)
    conda_libraries: fields.Field[list[str]] = fields.JSONField(default=list)
    pip_libraries: fields.Field[list[str]] = fields.JSONField(default=list)
    packages: fields.Field[list[dict[str, str]]] = fields.JSONField(default=list)
    reverted_from = fields.IntField(null=True)
    location = fields.CharField(max_length=1024, null=True)
    log = fields.TextField(default="")
    # A rattler lock file of exactly what was installed, and the conda channels it came
    # from (none for a pip-only version); null for versions built before lock files.
    lockfile = fields.TextField(null=True)
    channels: fields.Field[list[str] | None] = fields.JSONField(null=True)
    # The retention policy removed its built files (prefix, image); a revert to it rebuilds
    # it from the lock file. The bytes its files add (disk, or its own image layers).
    archived = fields.BooleanField(default=False, db_default=False)
    size_bytes = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    started_at = fields.DatetimeField(null=True)
    # Written by the running build every few seconds; a stale one means its worker died.
    heartbeat_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "version"
        unique_together = (("environment", "number"),)
        ordering = ["number"]


class Event(Model):
    """One change of an environment, written in the transaction that made it."""

    id = fields.IntField(primary_key=True)
    environment: fields.ForeignKeyRelation[Environment] = fields.ForeignKeyField(
        "models.Environment", related_name="events", on_delete=fields.CASCADE
    )
    environment_id: int
    at = fields.DatetimeField()
    kind = fields.CharEnumField(EventKind, max_length=20)
    # Null when the system did it (a worker, the retention policy).
    actor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    actor_id: int | None
    version_number = fields.IntField(null=True)
    note = fields.TextField(null=True)

    class Meta:
        table = "event"
        ordering = ["id"]
        indexes = (("environment_id", "kind"),)


class Installed(Model):
    """One installed package of a successful version, for searches by package: the same
    rows as Version.packages, canonical names, one index away."""

    id = fields.IntField(primary_key=True)
    version: fields.ForeignKeyRelation[Version] = fields.ForeignKeyField(
        "models.Version", related_name="installed", on_delete=fields.CASCADE
    )
    version_id: int
    environment: fields.ForeignKeyRelation[Environment] = fields.ForeignKeyField(
        "models.Environment", related_name="installed", on_delete=fields.CASCADE
    )
    environment_id: int
    manager = fields.CharField(max_length=5)
    name = fields.CharField(max_length=200)  # canonical (PEP 503)
    version_text = fields.CharField(max_length=200)
    # Whether the version is its environment's active one (latest successful).
    active = fields.BooleanField(default=False, db_default=False)

    class Meta:
        table = "installed_package"
        indexes = (("name", "active"), ("environment_id", "active"), ("version_id",))


class Policy(Model):
    """An organization's package policy, set by its admins."""

    id = fields.IntField(primary_key=True)
    organization: fields.OneToOneRelation[Organization] = fields.OneToOneField(
        "models.Organization", related_name="policy", on_delete=fields.CASCADE
    )
    organization_id: int
    blocked_packages: fields.Field[list[str]] = fields.JSONField(default=list)
    updated_at = fields.DatetimeField(null=True)
    updated_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="policies", null=True, on_delete=fields.SET_NULL
    )
    updated_by_id: int | None

    class Meta:
        table = "policy"
