"""What a built prefix holds, read in this process (inventory.survey_here) against the
prefix's own Python reading it (inventory.survey): the same packages, conda-owned or not."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from uv import find_uv_bin

from app.builders import inventory
from app.builders.local import LocalHost

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}


@pytest.fixture
def prefix(tmp_path: Path, index_url: str) -> Path:
    """A virtualenv as a build makes it, with two packages from the test index."""
    made = tmp_path / "env"
    uv = find_uv_bin()
    subprocess.run(
        [uv, "venv", "-q", "--no-project", "--python", sys.executable, str(made)],
        check=True,
        env=ENV,
        cwd=tmp_path,
    )
    python = str(made / "bin" / "python")
    packages = ["yard-alpha==2.0", "yard-beta"]
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", python, "--index-url", index_url, *packages],
        check=True,
        env={**ENV, "UV_CACHE_DIR": str(tmp_path / "cache")},
        cwd=tmp_path,
    )
    return made


async def test_read_here_as_the_prefix_python_reads_it(tmp_path: Path, prefix: Path) -> None:
    # A directory a .pth file adds, holding a distribution of its own (as an editable or a
    # path install leaves them), and one the .pth names that does not exist.
    extra = tmp_path / "extra"
    (extra / "Side_Car-0.3.dist-info").mkdir(parents=True)
    (extra / "Side_Car-0.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Side_Car\nVersion: 0.3\n"
    )
    [site] = prefix.glob("lib/python3*/site-packages")
    (site / "extra.pth").write_text(f"# a comment\n{extra}\n{tmp_path / 'missing'}\n")

    host = LocalHost(ENV, str(tmp_path))
    by_python = await inventory.survey(host, str(prefix))
    here = inventory.survey_here(str(prefix))
    assert here == by_python
    names = {(p.name, p.version) for p in here.packages}
    assert {("yard-alpha", "2.0"), ("Side_Car", "0.3")} <= names
    assert any(p.name == "yard-beta" for p in here.packages)
    assert here.conda_distributions == []
    assert await inventory.survey_built(host, str(prefix)) == here  # a local host: read here


def test_names_and_versions_are_the_metadata_headers(tmp_path: Path) -> None:
    """The survey reads a distribution's name and version from its metadata's header lines,
    as the email parser reads them (checked on this interpreter's own distributions, long
    descriptions and all), and falls back to the parser where a header line is missing."""
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    # A body that looks like headers must not count; no Version header: the parser says.
    (site / "odd-1.0.dist-info").mkdir(parents=True)
    (site / "odd-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nNAME: Odd.Name\n\nVersion: 9.9\n"
    )
    namespace: dict[str, Any] = {"prefix": str(tmp_path)}
    exec(inventory.READ_PREFIX + inventory.REPORT.split("conda = ")[0], namespace)
    name_version = namespace["name_version"]
    [odd] = importlib.metadata.distributions(path=[str(site)])
    assert name_version(odd) == (odd.metadata["Name"], odd.version) == ("Odd.Name", None)

    class HeadersOnly(importlib.metadata.PathDistribution):
        """Its metadata may be read as text only: the email parser is not used."""

        @property
        def metadata(self) -> Any:
            raise AssertionError("the whole metadata was parsed")

    plain = HeadersOnly(site / "odd-1.0.dist-info")
    (site / "odd-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Odd.Name\nversion: 2.0\nSummary: x\n\nName: body\n"
    )
    assert name_version(plain) == ("Odd.Name", "2.0")
    mine = list(importlib.metadata.distributions())
    assert len(mine) > 20
    assert [name_version(d) for d in mine] == [(d.metadata["Name"], d.version) for d in mine]
