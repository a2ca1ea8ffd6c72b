"""Which installed packages copy-to-dataflow takes as what the user asked for, and why it
leaves out the others (app/kernels/copy_dataflow.classify)."""

from __future__ import annotations

from typing import Any

from app.kernels.copy_dataflow import classify

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


def test_pip_made_environments_keep_what_was_requested() -> None:
    result = classify(
        found(
            [
                dist("pandas", "2.2.0", ["numpy>=1.26"], requested=True),
                dist("numpy", "1.26.4"),  # a dependency
                dist("pip", "24.0", requested=True),
                dist("ipykernel", "7.4.0", ["tornado>=6", "traitlets"], requested=True),
                dist("tornado", "6.6"),
                dist("traitlets", "5.16", requested=True),  # asked for, but the kernel's too
            ]
        )
    )
    assert result.pip == ["pandas==2.2.0"]
    assert [(i.name, i.why) for i in result.left_out] == [
        ("ipykernel", "the kernel's own (ipykernel and what it needs)"),
        ("pip", "the environment's installer tooling"),
        ("traitlets", "the kernel's own (ipykernel and what it needs)"),
    ]
    assert result.python_version == "3.11"


def test_uv_made_environments_take_the_leaves() -> None:
    result = classify(
        found(
            [
                # uv writes REQUESTED for everything: the leaves are what was asked for.
                dist("yard-beta", "1.0", ["yard-alpha>=1.0"], installer="uv", requested=True),
                dist("yard-alpha", "2.0", installer="uv", requested=True),
                dist("yard-pkg1", "1.0", installer="uv", requested=True),
                dist("ipykernel", "7.4.0", ["comm"], installer="uv", requested=True),
                dist("comm", "0.2", installer="uv", requested=True),
                # A marker that does not hold here does not make a dependency.
                dist("yard-win", "1.0", ['yard-pkg1; sys_platform == "win32"'], installer="uv"),
            ]
        )
    )
    assert sorted(result.pip) == ["yard-beta==1.0", "yard-pkg1==1.0", "yard-win==1.0"]
    assert [i.name for i in result.left_out] == ["ipykernel"]
    assert result.kernel_closure == {"ipykernel", "comm"}


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
                ["yardc-tool", "1.0", []],  # a dependency
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
