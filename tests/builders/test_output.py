"""Installer output as log lines, and the cause of a failed install, from real outputs."""

from __future__ import annotations

import pytest

from app.builders.output import (
    MAX_EXPLANATION,
    MAX_LINE_CHARS,
    LineSplitter,
    count,
    explain_failure,
)


def test_lines_across_chunks_and_multibyte_characters():
    splitter = LineSplitter()
    data = "première ligne\nsecond \x1b[1mbold\x1b[0m line  \nno newline at the end".encode()
    lines = []
    for i in range(len(data)):  # one byte at a time: characters split across chunks
        lines += splitter.feed(data[i : i + 1])
    lines += splitter.close()
    assert lines == ["première ligne", "second bold line", "no newline at the end"]


def test_long_lines_are_cut_with_a_marker_and_the_rest_is_kept():
    splitter = LineSplitter()
    huge = "x" * (10 * MAX_LINE_CHARS + 7)
    lines = []
    for start in range(0, len(huge), 4096):
        lines += splitter.feed(huge[start : start + 4096])
        assert sum(map(len, splitter._parts)) <= MAX_LINE_CHARS  # memory stays bounded
    lines += splitter.feed("\nafter\n")
    assert lines == [
        "x" * MAX_LINE_CHARS + f" [... {9 * MAX_LINE_CHARS + 7} more characters cut]",
        "after",
    ]
    assert splitter.close() == []


def test_count():
    assert [count(1, "package"), count(2, "package"), count(0, "package")] == [
        "1 package",
        "2 packages",
        "0 packages",
    ]
    assert count(1, "pip library", "pip libraries") == "1 pip library"
    assert count(3, "pip library", "pip libraries") == "3 pip libraries"


INDEX = "the package index http://127.0.0.1:9999/simple/"

# Outputs captured from uv 0.13 (--color never) and pip 23 (Debian bookworm's) on this host.
UV_NOT_FOUND = """\
Using Python 3.11.2 environment at: v
error: No solution found when resolving dependencies
  cause: Because yard-nope was not found in the package registry and you require yard-nope, \
we can conclude that your requirements are unsatisfiable."""
UV_NO_VERSION = """\
error: No solution found when resolving dependencies
  cause: Because there is no version of yard-alpha==9.0 and you require yard-alpha==9.0, we \
can conclude that your requirements are unsatisfiable."""
UV_CONFLICT = """\
error: No solution found when resolving dependencies
  cause: Because only yard-alpha<=2.0 is available and yard-beta depends on yard-alpha>=3, \
we can conclude that yard-beta cannot be used."""
UV_UNREACHABLE = """\
error: Request failed after 3 retries in 4.0s
  cause: Failed to fetch: http://127.0.0.1:9/simple/yard-alpha/
  cause: error sending request for url (http://127.0.0.1:9/simple/yard-alpha/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)"""
UV_HASH_MISMATCH = """\
Resolved 1 package in 1ms
error: Failed to download `yard-h==1.0`
  cause: Hash mismatch for `yard-h==1.0`

         Expected:
           sha256:0000000000000000000000000000000000000000000000000000000000000000

         Computed:
           sha256:5520112c5b64853038b2bdbaabf0d90723e5deff11a7741e5f3cd784a41a9efd"""
PIP_NOT_FOUND = """\
Looking in indexes: http://127.0.0.1:44135/simple/
ERROR: Could not find a version that satisfies the requirement yard-nope (from versions: none)
ERROR: No matching distribution found for yard-nope"""
PIP_NO_VERSION = """\
ERROR: Could not find a version that satisfies the requirement yard-alpha==9.0 (from versions: \
1.0, 2.0)
ERROR: No matching distribution found for yard-alpha==9.0"""
PIP_CONFLICT = """\
ERROR: Cannot install yard-alpha==1.0 and yard-alpha==2.0 because these package versions have \
conflicting dependencies.
ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/"""
PIP_UNREACHABLE = """\
WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after \
connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object \
at 0x7fec118646d0>: Failed to establish a new connection: [Errno 111] Connection refused')': \
/simple/yard-alpha/
ERROR: Could not find a version that satisfies the requirement yard-alpha (from versions: none)
ERROR: No matching distribution found for yard-alpha"""


@pytest.mark.parametrize(
    ("output", "cause"),
    [
        (UV_NOT_FOUND, f"yard-nope was not found in {INDEX}"),
        (UV_NO_VERSION, f"no version matching yard-alpha==9.0 is in {INDEX}"),
        (
            UV_HASH_MISMATCH,
            f"{INDEX} serves a file for yard-h==1.0 whose sha256 is not the one recorded: "
            "the file was replaced after the version was built",
        ),
        (
            UV_CONFLICT,
            "the requirements cannot be resolved: Because only yard-alpha<=2.0 is available "
            "and yard-beta depends on yard-alpha>=3, we can conclude that yard-beta cannot be "
            "used.",
        ),
        (
            UV_UNREACHABLE,
            f"{INDEX} could not be reached (Connection refused (os error 111))",
        ),
        (PIP_NOT_FOUND, f"yard-nope was not found in {INDEX}"),
        (
            PIP_NO_VERSION,
            f"no version matching yard-alpha==9.0 is in {INDEX} (it has 1.0, 2.0)",
        ),
        (
            PIP_CONFLICT,
            "the requirements conflict: yard-alpha==1.0 and yard-alpha==2.0 cannot be "
            "installed together",
        ),
        (PIP_UNREACHABLE, f"{INDEX} could not be reached (Connection refused)"),
        ("error: something else entirely", "something else entirely"),
        ("Resolved 3 packages\nInstalled 3 packages", None),
    ],
)
def test_explain_failure(output, cause):
    assert explain_failure(output.splitlines(), INDEX) == cause


def test_explanations_are_bounded():
    name = "yard-" + "x" * 5000
    cause = explain_failure([f"  cause: Because {name} was not found in the package registry"], "i")
    assert cause == f"{name[:120]}... was not found in i"
    cause = explain_failure(["error: " + "y" * 5000], "i")
    assert cause == "y" * MAX_EXPLANATION + f" [... {5000 - MAX_EXPLANATION} more characters cut]"
