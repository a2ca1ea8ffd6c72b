"""What copy-to-local reads from a version's lock file (rattler, in a child process), and
when it has uv check the pip files against their recorded sha256."""

from __future__ import annotations

import json
import subprocess

import pytest

from app.kernels.api import KernelError
from app.kernels.copy_local import RUNNER, hash_check, read_lock

SHA = "ab" * 32
PIP = [
    {"name": "yard-alpha", "version": "1.0",
     "url": f"http://127.0.0.1:1/files/yard_alpha-1.0-py3-none-any.whl#sha256={SHA}"},
    {"name": "yard-beta", "version": "1.0",
     "url": f"http://127.0.0.1:1/files/yard_beta-1.0-py3-none-any.whl#sha256={SHA}"},
]  # fmt: skip


@pytest.fixture(scope="module")
def lock_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A lock file as the builders write it (the conda runner's `lock`, on this machine)."""
    work = tmp_path_factory.mktemp("lock")
    request = {"action": "lock", "channels": [], "prefix": None, "pip": PIP,
               "result": str(work / "envyard.lock")}  # fmt: skip
    (work / "lock.json").write_text(json.dumps(request))
    subprocess.run([*RUNNER, str(work / "lock.json")], cwd=work, check=True, capture_output=True)
    return (work / "envyard.lock").read_text()


async def test_a_lock_of_this_platform_has_its_files_checked(lock_text: str) -> None:
    recorded = await read_lock(lock_text)
    assert [(p["name"], p["version"]) for p in recorded.pypi] == [
        ("yard-alpha", "1.0"),
        ("yard-beta", "1.0"),
    ]
    assert recorded.platforms == ["linux-64"] == [recorded.local_platform]
    assert hash_check(recorded, verify=True) == (
        True,
        "files checked against their recorded sha256",
    )
    checked, said = hash_check(recorded, verify=False)
    assert not checked and "--no-verify-hashes" in said


async def test_a_lock_of_another_platform_is_installed_without_its_hashes(lock_text: str) -> None:
    recorded = await read_lock(lock_text.replace("linux-64", "osx-arm64"))
    assert recorded.platforms == ["osx-arm64"]
    checked, said = hash_check(recorded, verify=True)
    assert not checked
    assert said == (
        "files not checked against their recorded sha256: the lock file is for osx-arm64 and "
        "this machine is linux-64, whose wheels of the same versions are other files"
    )


async def test_a_lock_without_every_hash(lock_text: str) -> None:
    alpha = "yard_alpha-1.0-py3-none-any.whl"
    recorded = await read_lock(lock_text.replace(f"{alpha}#sha256={SHA}", alpha))
    checked, said = hash_check(recorded, verify=True)
    assert not checked and "lacks the sha256 of some" in said


async def test_a_lock_that_is_not_one() -> None:
    with pytest.raises(KernelError) as caught:
        await read_lock("version: 7\nplatforms: [\n")
    said = str(caught.value)
    assert said.startswith("the version's lock file cannot be read: ") and "\n" not in said
    assert " -c " not in said  # what the lock file is, not how it was read
