"""The built-in JSON-schema validator, checked against jsonschema where that is installed."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench import schema as bench_schema

SCHEMA = bench_schema.DEFAULT_SCHEMA
CASES: list[tuple[Any, dict[str, Any], bool]] = [
    ({"city": "Lyon", "population": 500000, "tags": ["river"]}, SCHEMA, True),
    ({"city": "Lyon", "population": 500000, "tags": []}, SCHEMA, True),
    ({"city": "Lyon", "population": -1, "tags": []}, SCHEMA, False),
    ({"city": "Lyon", "population": 1.5, "tags": []}, SCHEMA, False),
    ({"city": "Lyon", "population": True, "tags": []}, SCHEMA, False),
    ({"city": "", "population": 1, "tags": []}, SCHEMA, False),
    ({"city": "x" * 25, "population": 1, "tags": []}, SCHEMA, False),
    ({"city": "Lyon!", "population": 1, "tags": []}, SCHEMA, False),
    ({"city": "Lyon", "population": 1, "tags": ["a", "b", "c", "d"]}, SCHEMA, False),
    ({"city": "Lyon", "population": 1, "tags": [1]}, SCHEMA, False),
    ({"city": "Lyon", "population": 1}, SCHEMA, False),
    ({"city": "Lyon", "population": 1, "tags": [], "extra": 1}, SCHEMA, False),
    (["not", "an", "object"], SCHEMA, False),
    ("b", {"enum": ["a", "b"]}, True),
    ("c", {"enum": ["a", "b"]}, False),
    (None, {"type": ["string", "null"]}, True),
    (3, {"type": "number", "exclusiveMaximum": 3}, False),
    ([1, 2], {"type": "array", "minItems": 3}, False),
    ({"a": {"b": "x"}}, {"type": "object", "properties": {"a": {"type": "object", "required": ["c"]}}}, False),
]


@pytest.mark.parametrize(("instance", "schema", "valid"), CASES)
def test_builtin_validator(instance: Any, schema: dict[str, Any], valid: bool) -> None:
    errors = bench_schema.validate(instance, schema, use_builtin=True)
    assert (errors == []) is valid, errors


@pytest.mark.parametrize(("instance", "schema", "valid"), CASES)
def test_jsonschema_agrees(instance: Any, schema: dict[str, Any], valid: bool) -> None:
    if bench_schema.VALIDATOR != "jsonschema":
        pytest.skip("jsonschema is not importable here: only the built-in validator runs")
    assert (bench_schema.validate(instance, schema) == []) is valid


def test_error_names_the_path() -> None:
    errors = bench_schema.validate({"city": "Lyon", "population": 1, "tags": [7]}, SCHEMA, use_builtin=True)
    assert errors == ["$.tags[0]: 7 is not of type string"]
