"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.index import CATALOGUE, serve_index, write_index


@pytest.fixture(scope="session")
def index_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local package index of wheels built by the tests, on 127.0.0.1."""
    root = write_index(tmp_path_factory.mktemp("index"), CATALOGUE)
    with serve_index(Path(root)) as url:
        yield url
