"""schema.graphql is the live schema, and it holds every name of the client contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    build_schema,
    is_required_argument,
)
from strawberry.printer import print_schema

from app.graphql.schema import schema

ROOT = Path(__file__).resolve().parent.parent
# The repository's copy of the client contract; ../shared/contract.graphql is its source.
CONTRACT = ROOT / "tests" / "contract.graphql"
SHARED_CONTRACT = ROOT.parent / "shared" / "contract.graphql"
ADDITIONS = "# Additions (second contract revision)"

# Names of the second revision not implemented yet: none since issue 11. The check below
# demands that exactly these are missing, so nothing of the contract may go missing.
PENDING_ADDITIONS: set[str] = set()


def test_schema_file_is_the_live_schema():
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == print_schema(schema) + "\n", "run: envyard export-schema > schema.graphql"


def test_export_schema_command_prints_it():
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "export-schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert result.stdout == (ROOT / "schema.graphql").read_text()


def contract_differences(contract_sdl: str, live_sdl: str) -> list[str]:
    contract, live = build_schema(contract_sdl), build_schema(live_sdl)
    problems: list[str] = []
    for name, expected in contract.type_map.items():
        if name.startswith("__"):
            continue
        actual = live.type_map.get(name)
        if actual is None or type(actual) is not type(expected):
            problems.append(f"type {name} missing or of another kind")
            continue
        if isinstance(expected, GraphQLEnumType):
            assert isinstance(actual, GraphQLEnumType)
            missing = set(expected.values) - set(actual.values)
            problems += [f"enum {name}.{value} missing" for value in sorted(missing)]
        elif isinstance(expected, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in expected.fields.items():
                got = actual.fields.get(field_name)  # type: ignore[union-attr]
                where = f"{name}.{field_name}"
                if got is None or str(got.type) != str(field.type):
                    problems.append(f"{where}: {field.type} expected")
                    continue
                if isinstance(expected, GraphQLInputObjectType):
                    if got.default_value != field.default_value:
                        problems.append(f"{where}: default {field.default_value!r} expected")
                    continue
                for arg_name, arg in field.args.items():
                    got_arg = got.args.get(arg_name)
                    if got_arg is None or str(got_arg.type) != str(arg.type):
                        problems.append(f"{where}({arg_name}: {arg.type}) expected")
                required = {a for a, v in got.args.items() if is_required_argument(v)}
                extra_required = required - set(field.args)
                problems += [f"{where}: new required argument {a}" for a in extra_required]
        elif not isinstance(expected, GraphQLScalarType):
            problems.append(f"{name}: unexpected kind in contract")
    return problems


def test_live_schema_holds_the_contract_but_the_pending_additions():
    assert ADDITIONS in CONTRACT.read_text()
    missing = set(contract_differences(CONTRACT.read_text(), print_schema(schema)))
    assert missing == PENDING_ADDITIONS


@pytest.mark.skipif(not SHARED_CONTRACT.is_file(), reason="no ../shared beside this clone")
def test_contract_copy_is_the_shared_contract():
    assert CONTRACT.read_text() == SHARED_CONTRACT.read_text(), (
        "copy ../shared/contract.graphql to tests/contract.graphql"
    )


def test_the_contract_check_can_fail():
    broken = CONTRACT.read_text().replace("activeVersion: Version", "activeVersionX: Version")
    assert contract_differences(print_schema(schema), broken)  # reversed roles: must differ
    renamed = print_schema(schema).replace("PENDING_APPROVAL", "PENDING")
    assert "enum EnvironmentStatus.PENDING_APPROVAL missing" in contract_differences(
        CONTRACT.read_text(), renamed
    )
