"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.conda import build_channel, serve_channel
from tests.support.index import CATALOGUE, serve_index, write_index
from tests.support.wheelhouse import wheelhouse


@pytest.fixture(scope="session")
def index_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local package index on 127.0.0.1: wheels built by the tests, and ipykernel with
    what it needs, repacked from this environment (tests/support/wheelhouse.py)."""
    root = write_index(tmp_path_factory.mktemp("index"), CATALOGUE, wheelhouse())
    with serve_index(Path(root)) as url:
        yield url


@pytest.fixture(scope="session")
def conda_channel() -> Path:
    """The tests' own conda channel (tests/support/conda.py), built once per host."""
    return build_channel()


@pytest.fixture(scope="session")
def conda_channel_url(conda_channel: Path) -> Iterator[str]:
    """That channel served on 127.0.0.1."""
    with serve_channel(conda_channel) as url:
        yield url
