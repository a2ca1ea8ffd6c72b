"""Which installed packages copy-to-dataflow takes as libraries, and why it leaves out the
others (app/kernels/copy_dataflow.classify); what it makes of an interpreter's report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from app.kernels.api import KernelError
from app.kernels.copy_dataflow import classify, inspect, parse

MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "6.1",
    "platform_system": "Linux",
    "platform_version": "#1",
    "python_full_version": "3.11.7",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def dist(
    name: str,
    version: str = "1.0",
    requires: list[str] | None = None,
    *,
    installer: str = "pip",
    requested: bool = False,
    direct_url: dict[str, Any] | None = None,
    conda: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "requires": requires or [],
        "requested": requested,
        "installer": installer,
        "direct_url": direct_url,
        "conda": conda,
    }


def found(dists: list[dict[str, Any]], conda: list[list[Any]] | None = None) -> dict[str, Any]:
    return {"python": "3.11", "prefix": "/p", "conda": conda or [], "dists": dists,
            "markers": MARKERS}  # fmt: skip


def test_pip_made_environments_keep_what_was_requested_and_what_it_needs() -> None:
    result = classify(
        found(
            [
                dist("pandas", "2.2.0", ["numpy>=1.26"], requested=True),
                dist("numpy", "1.26.4"),  # a dependency: pinned too, or a build takes the latest
                dist("pip", "24.0", requested=True),
                dist("ipykernel", "7.4.0", ["tornado>=6", "traitlets"], requested=True),
                dist("tornado", "6.6"),
                dist("traitlets", "5.16", requested=True),  # asked for, but the kernel's too
                dist("orphan", "1.0"),  # not asked for, needed by nothing
            ]
        )
    )
    assert result.pip == ["numpy==1.26.4", "pandas==2.2.0"]
    assert [(i.name, i.why) for i in result.left_out] == [
        ("ipykernel", "the kernel's own (ipykernel and what it needs)"),
        ("orphan", "not asked for (no REQUESTED marker) and nothing kept needs it"),
        ("pip", "the environment's installer tooling"),
        ("tornado", "the kernel's own (ipykernel and what it needs)"),
        ("traitlets", "the kernel's own (ipykernel and what it needs)"),
    ]
    assert result.python_version == "3.11"
    assert result.kernel_closure == {"ipykernel", "tornado", "traitlets"}


def test_uv_made_environments_pin_everything_but_the_kernel() -> None:
    result = classify(
        found(
            [
                # uv writes REQUESTED for everything: each of them counts as asked for.
                dist("yard-beta", "1.0", ["yard-alpha>=1.0"], installer="uv", requested=True),
                dist("yard-alpha", "1.0", installer="uv", requested=True),  # not a leaf
                dist("yard-pkg1", "1.0", installer="uv", requested=True),
                dist("ipykernel", "7.4.0", ["comm", "traitlets"], installer="uv", requested=True),
                dist("comm", "0.2", installer="uv", requested=True),
                # The kernel needs it, and so does the user's yard-gamma: it is the user's too.
                dist("traitlets", "5.16", installer="uv", requested=True),
                dist("yard-gamma", "0.5", ["traitlets"], installer="uv", requested=True),
                # A dependency cycle: neither is a leaf, both are kept.
                dist("yard-c1", "1.0", ["yard-c2"], installer="uv", requested=True),
                dist("yard-c2", "1.0", ["yard-c1"], installer="uv", requested=True),
                # A marker that does not hold here does not make a dependency.
                dist("yard-win", "1.0", ['yard-pkg1; sys_platform == "win32"'], installer="uv"),
            ]
        )
    )
    assert sorted(result.pip) == [
        "traitlets==5.16",
        "yard-alpha==1.0",
        "yard-beta==1.0",
        "yard-c1==1.0",
        "yard-c2==1.0",
        "yard-gamma==0.5",
        "yard-pkg1==1.0",
        "yard-win==1.0",
    ]
    assert [(i.name, i.why) for i in result.left_out] == [
        ("comm", "the kernel's own (ipykernel and what it needs)"),
        ("ipykernel", "the kernel's own (ipykernel and what it needs)"),
    ]
    assert result.kernel_closure == {"ipykernel", "comm"}


def test_every_installed_package_is_a_library_or_listed() -> None:
    dists = [
        dist("mine", "0.1", ["yard-dep"], requested=True,
             direct_url={"url": "file:///src/mine", "dir_info": {"editable": True}}),
        dist("yard-dep", "1.0"),  # needed only by what cannot be said
        dist("yard-beta", "1.0", ["yard-alpha", "setuptools"], installer="uv"),
        dist("yard-alpha", "1.0", installer="uv"),
        dist("setuptools", "69.0", installer="uv"),  # tooling, but yard-beta needs it
        dist("wheel", "0.42", installer="uv"),
    ]  # fmt: skip
    result = classify(found(dists))
    assert sorted(result.pip) == ["setuptools==69.0", "yard-alpha==1.0", "yard-beta==1.0"]
    assert {i.name: i.why for i in result.left_out} == {
        "mine": "an editable install of file:///src/mine: envyard installs released packages only",
        "yard-dep": "needed only by mine, which is left out",
        "wheel": "the environment's installer tooling",
    }
    said = {p.split("==")[0] for p in result.pip} | {i.name for i in result.left_out}
    assert said == {d["name"] for d in dists}


def test_what_the_grammar_cannot_say_is_listed_with_why() -> None:
    result = classify(
        found(
            [
                dist("mine", "0.1", requested=True,
                     direct_url={"url": "file:///src/mine", "dir_info": {"editable": True}}),
                dist("local", "1.0", requested=True,
                     direct_url={"url": "file:///w/local-1.0-py3-none-any.whl",
                                 "archive_info": {}}),
                dist("remote", "1.0", requested=True,
                     direct_url={"url": "https://example.org/remote-1.0.tar.gz",
                                 "archive_info": {}}),
            ]
        )
    )  # fmt: skip
    assert result.pip == []
    assert {i.name: i.why for i in result.left_out} == {
        "mine": "an editable install of file:///src/mine: envyard installs released packages only",
        "local": "installed from a local path (file:///w/local-1.0-py3-none-any.whl): envyard "
        "installs from the index only",
        "remote": "installed from a URL (https://example.org/remote-1.0.tar.gz): envyard "
        "installs from the index only",
    }


def test_conda_records_with_a_requested_spec_are_conda_libraries() -> None:
    result = classify(
        found(
            [
                dist("yardc-alpha", "1.0", conda=True),  # conda's own: never a pip library
                dist("yard-alpha", "2.0", requested=True),
            ],
            conda=[
                ["python", "3.11.7", ["python 3.11.*"]],
                ["yardc-alpha", "1.0", ["yardc-alpha==1.0"]],
                ["yardc-tool", "1.0", []],  # a dependency: the conda solver's
            ],
        )
    )
    assert result.conda == ["yardc-alpha==1.0"]
    assert result.pip == ["yard-alpha==2.0"]
    assert {(p.manager.value, p.name) for p in result.installed} == {
        ("CONDA", "python"),
        ("CONDA", "yardc-alpha"),
        ("CONDA", "yardc-tool"),
        ("PIP", "yard-alpha"),
    }


def test_a_conda_installed_kernel_is_the_kernels() -> None:
    result = classify(
        found(
            [
                dist("ipykernel", "6.29", ["tornado", "comm"], conda=True),
                dist("tornado", "6.4", conda=True),
                dist("comm", "0.2", ["traitlets"]),  # pip's, for conda's ipykernel
                dist("traitlets", "5.16"),
                dist("numpy", "1.26.4", conda=True),
                dist("yard-np", "1.0", ["numpy"], requested=True),
            ],
            conda=[
                ["python", "3.11.7", ["python 3.11.*"]],
                ["ipykernel", "6.29", ["ipykernel"]],
                ["tornado", "6.4", ["tornado"]],  # asked for, but only the kernel needs it
                ["numpy", "1.26.4", []],  # not asked for, but yard-np needs it: pinned
            ],
        )
    )
    assert result.conda == ["numpy==1.26.4"]
    assert result.pip == ["yard-np==1.0"]
    assert [(i.manager.value, i.name) for i in result.left_out] == [
        ("CONDA", "ipykernel"),
        ("CONDA", "tornado"),
        ("PIP", "comm"),
        ("PIP", "traitlets"),
    ]
    assert result.kernel_closure == {"ipykernel", "tornado", "comm", "traitlets"}


def test_a_kernel_from_envyard_keeps_every_package_of_its_version() -> None:
    from app.domain.requirements import PackageManager
    from app.domain.versions import Package

    version = [
        Package("yard-alpha", "1.0", PackageManager.PIP),  # a dependency of yard-beta
        Package("yard-beta", "1.0", PackageManager.PIP),
        Package("traitlets", "5.0", PackageManager.PIP),  # the environment's, not the kernel's
    ]
    result = classify(
        found(
            [
                dist("yard-beta", "1.0", ["yard-alpha"], installer="uv"),
                dist("yard-alpha", "1.0", installer="uv"),
                dist("traitlets", "5.0", installer="uv"),
                dist("ipykernel", "7.4.0", ["traitlets"], installer="uv"),
                dist("yard-pkg3", "1.0", installer="uv"),  # added since
            ]
        ),
        version,
    )
    assert sorted(result.pip) == [
        "traitlets==5.0",
        "yard-alpha==1.0",
        "yard-beta==1.0",
        "yard-pkg3==1.0",
    ]
    assert [i.name for i in result.left_out] == ["ipykernel"]


def test_an_interpreter_report_that_is_not_one_is_a_clear_error() -> None:
    good = json.dumps(found([dist("yard-alpha")]))
    assert parse("/p/bin/python", "noise\n" + good)["python"] == "3.11"
    for out in ("", "Python 2.7\n", "[]", "null", '{"python": "3.11"}', good.replace("[", "{", 1)):
        with pytest.raises(KernelError, match="did not report its packages"):
            parse("/p/bin/python", out)


async def test_an_interpreter_that_says_something_else(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'not a Python at all'\n")
    fake.chmod(0o755)
    with pytest.raises(KernelError, match="not a Python at all"):
        await inspect(str(fake))
    fake.write_text("#!/bin/sh\necho 'broken' >&2\nexit 3\n")
    with pytest.raises(KernelError, match=r"cannot be run: .*exit code 3.*broken"):
        await inspect(str(fake))
    # This Python reports itself.
    assert (await inspect(sys.executable)).python_version == "{}.{}".format(*sys.version_info[:2])
