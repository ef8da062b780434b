"""JSON-schema validation for the benchmark's ``json_schema`` check. Standard library only.

``jsonschema`` is used when it is importable (``VALIDATOR == "jsonschema"``); otherwise a built-in
validator covers the subset structured-output schemas use: ``type`` (one or a list), ``properties``,
``required``, ``additionalProperties`` (boolean or schema), ``items``, ``enum``, ``const``,
``minLength``/``maxLength``, ``pattern`` (``re.search``), ``minItems``/``maxItems``, ``minimum``/``maximum``,
``exclusiveMinimum``/``exclusiveMaximum``. Other keywords are ignored by the built-in validator,
and the report says which validator ran.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_jsonschema: Any
try:  # pragma: no cover - which branch runs depends on the interpreter
    _jsonschema = importlib.import_module("jsonschema")
    VALIDATOR = "jsonschema"
except ImportError:  # pragma: no cover
    _jsonschema = None
    VALIDATOR = "builtin"

# Bounded on purpose: grammar-constrained decoding of a random or weak model only ends when
# strings and arrays have a maximum. The ASCII patterns also keep llama.cpp's output parser happy
# (without them a random model's bytes made about a third of its replies an HTTP 500).
DEFAULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 24, "pattern": "^[A-Za-z ]{1,24}$"},
        "population": {"type": "integer", "minimum": 0, "maximum": 100000000},
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 12, "pattern": "^[a-z]{1,12}$"},
            "maxItems": 3,
        },
    },
    "required": ["city", "population", "tags"],
    "additionalProperties": False,
}

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def validate(instance: Any, schema: dict[str, Any], use_builtin: bool = False) -> list[str]:
    """Return the validation errors of instance against schema (empty when valid)."""
    if _jsonschema is not None and not use_builtin:
        cls = _jsonschema.validators.validator_for(schema)
        return [
            f"{_path(list(err.absolute_path))}: {err.message}"
            for err in sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
        ]
    errors: list[str] = []
    _check(instance, schema, [], errors)
    return errors


def _path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def _check(value: Any, schema: Any, path: list[Any], errors: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    where = _path(path)
    stype = schema.get("type")
    if stype is not None:
        names = stype if isinstance(stype, list) else [stype]
        if not any(_is_type(value, n) for n in names):
            errors.append(f"{where}: {value!r} is not of type {' or '.join(map(str, names))}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, str):
        _check_string(value, schema, where, errors)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, where, errors)
    if isinstance(value, list):
        _check_array(value, schema, path, errors)
    if isinstance(value, dict):
        _check_object(value, schema, path, errors)


def _check_string(value: str, schema: dict[str, Any], where: str, errors: list[str]) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: {value!r} is shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{where}: {value!r} is longer than {schema['maxLength']}")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        errors.append(f"{where}: {value!r} does not match {schema['pattern']!r}")


def _check_number(value: float, schema: dict[str, Any], where: str, errors: list[str]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value!r} is less than the minimum of {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: {value!r} is greater than the maximum of {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        errors.append(f"{where}: {value!r} is not greater than {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        errors.append(f"{where}: {value!r} is not less than {schema['exclusiveMaximum']}")


def _check_array(value: list[Any], schema: dict[str, Any], path: list[Any], errors: list[str]) -> None:
    where = _path(path)
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{where}: {len(value)} items, fewer than {schema['minItems']}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{where}: {len(value)} items, more than {schema['maxItems']}")
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _check(item, items, [*path, index], errors)


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: list[Any], errors: list[str]) -> None:
    where = _path(path)
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{where}: {name!r} is a required property")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            _check(item, props[name], [*path, name], errors)
        elif extra is False:
            errors.append(f"{where}: additional property {name!r} is not allowed")
        elif isinstance(extra, dict):
            _check(item, extra, [*path, name], errors)
