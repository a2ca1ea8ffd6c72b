"""One typed Settings object, read once from ENVYARD_* variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_DOCKER_IMAGES = tuple((f"python:3.{m}", f"python:3.{m}-slim") for m in range(10, 15))
_BASE_NAME = re.compile(r"python:3\.[0-9]{1,2}")
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")


class SettingsError(ValueError):
    """A variable holds a value envyard cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    index_url: str | None
    extra_index_urls: tuple[str, ...]
    ca_bundle: str | None
    redis_url: str | None
    builder: str
    build_timeout: float
    max_concurrent_builds: int
    pythons: tuple[str, ...]
    log_retention: float
    allowed_origins: tuple[str, ...] = ()
    queue_name: str = "envyard:queue"
    stale_build_after: float = 120.0
    # How long a WebSocket connection's caller stands before its token is checked again.
    token_recheck: float = 30.0
    docker_host: str | None = None
    docker_images: tuple[tuple[str, str], ...] = DEFAULT_DOCKER_IMAGES
    max_body_bytes: int = 256 * 1024
    max_query_tokens: int = 2000
    max_query_selections: int = 300
    conda_channels: tuple[str, ...] = ("conda-forge",)
    # An image about to have more layers than this is built from the base image again:
    # overlay2 refuses about 125 (issue 10: "max depth exceeded" at version 125).
    max_image_layers: int = 64
    # Docker builder: push every version there, pull what an engine lacks (host[:port][/path]).
    registry: str | None = None
    # Credentials for it; from the server's settings only, never shown in logs or errors.
    registry_username: str | None = field(default=None, repr=False)
    registry_password: str | None = field(default=None, repr=False)
    # The retention policy: the successful versions per environment whose built files stay
    # (besides the active, submitted and published ones); None keeps every version.
    keep_versions: int | None = None

    @property
    def heartbeat_interval(self) -> float:
        """How often a running build proves it is alive: well inside the stale bound."""
        return max(0.2, min(10.0, self.stale_build_after / 4))

    @property
    def envs_dir(self) -> Path:
        return self.data_dir / "envs"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("ENVYARD_DATA_DIR", ".envyard")).expanduser().resolve()
        database_url = env.get("ENVYARD_DATABASE_URL") or f"sqlite://{data_dir / 'envyard.db'}"
        _check_database_url(database_url)
        index_url = env.get("ENVYARD_INDEX_URL") or None
        extra = tuple(u for u in env.get("ENVYARD_EXTRA_INDEX_URLS", "").split() if u)
        for name, url in [
            ("ENVYARD_INDEX_URL", index_url),
            *(("ENVYARD_EXTRA_INDEX_URLS", u) for u in extra),
        ]:
            if url is not None:
                _check_index_url(name, url)
        ca_bundle = env.get("ENVYARD_CA_BUNDLE") or (
            DEFAULT_CA_BUNDLE if Path(DEFAULT_CA_BUNDLE).is_file() else None
        )
        builder = env.get("ENVYARD_BUILDER", "local")
        if builder not in ("local", "docker"):
            raise SettingsError(f"ENVYARD_BUILDER must be 'local' or 'docker', not {builder!r}")
        redis_url = env.get("ENVYARD_REDIS_URL") or None
        shared = env.get("ENVYARD_SHARED_DATA_DIR", "").lower() in ("1", "true", "yes")
        if redis_url and builder == "local" and not shared:
            # A worker's venvs live on its disk; activation would hand out python paths that
            # the API hosts (and the notebooks behind them) cannot see.
            raise SettingsError(
                "ENVYARD_BUILDER=local with ENVYARD_REDIS_URL builds environments on each "
                "worker's own disk, where API hosts cannot see them: use ENVYARD_BUILDER=docker, "
                "or put ENVYARD_DATA_DIR on storage that every API and worker host mounts at the "
                "same path and set ENVYARD_SHARED_DATA_DIR=1"
            )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            index_url=index_url,
            extra_index_urls=extra,
            ca_bundle=ca_bundle,
            redis_url=redis_url,
            builder=builder,
            build_timeout=_positive_float(env, "ENVYARD_BUILD_TIMEOUT", 1800.0),
            max_concurrent_builds=_positive_int(env, "ENVYARD_MAX_CONCURRENT_BUILDS", 2),
            pythons=tuple(p for p in env.get("ENVYARD_PYTHONS", "").split(os.pathsep) if p),
            log_retention=_positive_float(env, "ENVYARD_LOG_RETENTION", 300.0),
            allowed_origins=tuple(env.get("ENVYARD_ALLOWED_ORIGINS", "").split()),
            queue_name=env.get("ENVYARD_QUEUE_NAME") or "envyard:queue",
            stale_build_after=_positive_float(env, "ENVYARD_STALE_BUILD_AFTER", 120.0),
            token_recheck=_positive_float(env, "ENVYARD_TOKEN_RECHECK", 30.0),
            docker_host=env.get("ENVYARD_DOCKER_HOST") or None,
            docker_images=_docker_images(env.get("ENVYARD_DOCKER_IMAGES")),
            max_body_bytes=_positive_int(env, "ENVYARD_MAX_BODY_BYTES", 256 * 1024),
            max_query_tokens=_positive_int(env, "ENVYARD_MAX_QUERY_TOKENS", 2000),
            max_query_selections=_positive_int(env, "ENVYARD_MAX_QUERY_SELECTIONS", 300),
            conda_channels=_conda_channels(env.get("ENVYARD_CONDA_CHANNELS")),
            max_image_layers=_positive_int(env, "ENVYARD_MAX_IMAGE_LAYERS", 64),
            registry=_registry(env.get("ENVYARD_REGISTRY")),
            registry_username=env.get("ENVYARD_REGISTRY_USERNAME") or None,
            registry_password=env.get("ENVYARD_REGISTRY_PASSWORD") or None,
            keep_versions=(
                _positive_int(env, "ENVYARD_KEEP_VERSIONS", 1)
                if env.get("ENVYARD_KEEP_VERSIONS")
                else None
            ),
        )


_REGISTRY = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])"
    r"(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
)


def _registry(raw: str | None) -> str | None:
    """A registry and optional path for image names (`registry.example.com/team`)."""
    if not raw:
        return None
    value = raw.strip().rstrip("/")
    if not _REGISTRY.fullmatch(value):
        raise SettingsError(
            "ENVYARD_REGISTRY must be a registry host with an optional port and path, like "
            f"127.0.0.1:5000 or registry.example.com/team (no scheme), not {raw!r}"
        )
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, not {raw!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _positive_float(env, name, default)
    if value != int(value):
        raise SettingsError(f"{name} must be a whole number, not {env[name]!r}")
    return int(value)


def _check_database_url(url: str) -> None:
    scheme = url.split("://", 1)[0]
    if scheme not in ("sqlite", "postgres", "postgresql", "asyncpg"):
        raise SettingsError(
            f"ENVYARD_DATABASE_URL must start with sqlite:// or postgres://, not {scheme}://"
        )


def _check_index_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file") or any(c.isspace() for c in url):
        raise SettingsError(f"{name} must be an http(s):// or file:// URL, not {url!r}")


def _conda_channels(raw: str | None) -> tuple[str, ...]:
    """Channel URLs (http, https, file) or names on anaconda.org, separated by spaces."""
    channels = tuple((raw or "conda-forge").split())
    for channel in channels:
        if "://" in channel:
            _check_index_url("ENVYARD_CONDA_CHANNELS", channel)
        elif not _CHANNEL_NAME.fullmatch(channel):
            raise SettingsError(
                f"ENVYARD_CONDA_CHANNELS: {channel!r} is neither a channel URL nor a name"
            )
    return channels


def conda_channel_url(channel: str) -> str:
    """A channel as a URL (names live on anaconda.org, as conda's defaults say)."""
    return channel if "://" in channel else f"https://conda.anaconda.org/{channel}"


def _docker_images(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`python:3.11=registry/image:tag python:3.12=...`: base environment -> Docker image."""
    if not raw:
        return DEFAULT_DOCKER_IMAGES
    pairs = []
    for item in raw.split():
        name, sep, image = item.partition("=")
        if not sep or not _BASE_NAME.fullmatch(name) or not _IMAGE_REF.fullmatch(image):
            raise SettingsError(
                f"ENVYARD_DOCKER_IMAGES: {item!r} is not python:3.N=<image reference>"
            )
        pairs.append((name, image))
    return tuple(pairs)
