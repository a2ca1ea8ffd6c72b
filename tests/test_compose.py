"""docker-compose.yml cannot run here (no registry to pull from): check what it says instead."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
READ_BY_CODE = set(re.findall(r'"(ENVYARD_[A-Z_]+)"', (ROOT / "app/settings.py").read_text()))


def test_services_and_health_checks():
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "api", "worker"}
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert services["api"]["command"][:2] == ["envyard", "serve"]
    assert services["worker"]["command"] == ["envyard", "worker"]
    assert set(COMPOSE["volumes"]) >= {"postgres-data", "redis-data"}


def test_only_the_worker_gets_the_docker_socket():
    for name, service in COMPOSE["services"].items():
        mounts = [str(v) for v in service.get("volumes", [])]
        has_socket = any("docker.sock" in m for m in mounts)
        assert has_socket is (name == "worker"), name


def test_variables_are_the_ones_the_code_reads():
    for name in ("api", "worker"):
        env = COMPOSE["services"][name]["environment"]
        assert set(env) <= READ_BY_CODE, set(env) - READ_BY_CODE
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        assert settings.redis_url and settings.builder == "docker"
        assert settings.database_url.startswith("postgres://")
        assert dict(settings.docker_images)["python:3.11"] == "python:3.11-slim"
    assert COMPOSE["services"]["api"]["environment"] == COMPOSE["services"]["worker"]["environment"]
