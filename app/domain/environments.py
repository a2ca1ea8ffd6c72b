"""What an environment definition may hold: names, base environment or Python version, libraries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.errors import BadUserInput
from app.domain.requirements import Library, PackageManager, parse_libraries

SHORT_NAME = re.compile(r"^[a-z][a-z0-9]{0,4}$")
# Organization and user names: also a valid Docker repository path component, since images
# are named envyard/<organization>/<short name>.
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*")
MAX_ACCOUNT_NAME = 64
PYTHON_VERSION = re.compile(r"^3\.[0-9]{1,2}$")
MAX_FULL_NAME = 100
MAX_DESCRIPTION = 2000
MAX_FEEDBACK = 5000


@dataclass(frozen=True, slots=True)
class BaseEnvironment:
    name: str
    python_version: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A validated environment definition, ready to store."""

    short_name: str
    full_name: str
    description: str | None
    base_environment: str | None
    python_version: str
    conda_libraries: list[Library]
    pip_libraries: list[Library]


def check_short_name(value: str) -> str:
    if not SHORT_NAME.fullmatch(value):
        raise BadUserInput(
            "shortName",
            f"Short name {value!r} must be 1 to 5 characters: lowercase letters and digits, "
            "starting with a letter (e.g. mlenv).",
        )
    return value


def check_account_name(field: str, value: str) -> str:
    if len(value) > MAX_ACCOUNT_NAME or not ACCOUNT_NAME.fullmatch(value):
        raise BadUserInput(
            field,
            f"{field} {value!r} must be lowercase letters and digits, starting with a "
            "letter, optionally joined by single '_', '.' or '-'.",
        )
    return value


def check_full_name(value: str) -> str:
    text = value.strip()
    if not text:
        raise BadUserInput("fullName", "Full name must not be empty.")
    if len(text) > MAX_FULL_NAME:
        raise BadUserInput("fullName", f"Full name must be at most {MAX_FULL_NAME} characters.")
    if not text.isprintable():
        raise BadUserInput("fullName", "Full name must be a single line of printable text.")
    return text


def check_text(field: str, label: str, value: str, max_length: int) -> str:
    """Free text of several lines: stripped, bounded, and storable (no control characters
    but newlines and tabs, no lone UTF-16 surrogates, which no database accepts).

    The HTTP and WebSocket layers refuse lone surrogates in any request already; this is the
    rule itself, for every caller of the domain (the CLI, tests, later transports)."""
    text = value.strip()
    if len(text) > max_length:
        raise BadUserInput(field, f"{label} must be at most {max_length} characters.")
    for char in text:
        if "\ud800" <= char <= "\udfff":
            raise BadUserInput(
                field, f"{label} holds a lone UTF-16 surrogate, which is not valid text."
            )
        if (char < " " and char not in "\n\r\t") or char == "\x7f":
            raise BadUserInput(
                field, f"{label} must not contain control characters (found {char!r})."
            )
    return text


def check_description(value: str | None) -> str | None:
    if value is None:
        return None
    return check_text("description", "Description", value, MAX_DESCRIPTION) or None


def check_feedback(value: str) -> str:
    text = check_text("feedback", "Feedback", value, MAX_FEEDBACK)
    if not text:
        raise BadUserInput("feedback", "Feedback must say what to change; it is empty.")
    return text


def resolve_python(
    base_environment: str | None,
    python_version: str | None,
    offered: Sequence[BaseEnvironment],
) -> tuple[str | None, str]:
    """Exactly one of base environment and Python version; returns (base name, Python version)."""
    if base_environment is not None and python_version is not None:
        raise BadUserInput(
            "pythonVersion",
            "Give either a base environment or a Python version, not both: the base "
            "environment decides the Python version.",
        )
    if base_environment is not None:
        for base in offered:
            if base.name == base_environment:
                return base.name, base.python_version
        names = ", ".join(b.name for b in offered) or "none"
        raise BadUserInput(
            "baseEnvironment",
            f"Unknown base environment {base_environment!r}; available: {names}.",
        )
    if python_version is None:
        raise BadUserInput(
            "pythonVersion", "With no base environment, a Python version (e.g. 3.11) is required."
        )
    versions = [b.python_version for b in offered]
    if not PYTHON_VERSION.fullmatch(python_version) or python_version not in versions:
        raise BadUserInput(
            "pythonVersion",
            f"Python version {python_version!r} is not available; choose one of "
            f"{', '.join(versions) or 'none'}.",
        )
    return None, python_version


def check_libraries(
    conda: Sequence[str], pip: Sequence[str]
) -> tuple[list[Library], list[Library]]:
    return (
        parse_libraries("condaLibraries", PackageManager.CONDA, conda),
        parse_libraries("pipLibraries", PackageManager.PIP, pip),
    )


def check_definition(
    *,
    short_name: str,
    full_name: str,
    description: str | None,
    base_environment: str | None,
    python_version: str | None,
    conda_libraries: Sequence[str],
    pip_libraries: Sequence[str],
    offered: Sequence[BaseEnvironment],
) -> Definition:
    base, python = resolve_python(base_environment, python_version, offered)
    conda, pip = check_libraries(conda_libraries, pip_libraries)
    return Definition(
        short_name=check_short_name(short_name),
        full_name=check_full_name(full_name),
        description=check_description(description),
        base_environment=base,
        python_version=python,
        conda_libraries=conda,
        pip_libraries=pip,
    )
