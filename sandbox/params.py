"""RPC parameters -> typed values, checked against the action's inputSchema (from tools.json).

The SDK sends every parameter as a string, form-urlencoded in the body or in the query: lists flattened
(`Tasks.1.ImageURL`, `Names.1`), booleans as `True`/`False`, floats as `70.0`, and some lists as one JSON string
(BatchAddFaces `Faces=[{...}]`). Both list forms are accepted. Keys inside list items match case-insensitively
(RecognizeAction sends `URLList.1.imageData`). Unknown parameters are ignored, as Alibaba does.

Errors: a required parameter absent or empty -> `Missing<Param>` (400, "<Param> is mandatory for this action.",
`Tasks.1.ImageURL` style names inside lists); a value of the wrong type or outside the schema ->
`InvalidParameter` (400); a URL parameter that is not http(s) -> `IllegalUrlParameter` (400).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from sandbox.errors import ParameterError, invalid_parameter, missing

INTEGER = re.compile(r"^[+-]?\d+$")
JsonPath = list[str | int]


class ParamParser:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._properties: dict[str, Any] = dict(schema.get("properties") or {})
        self._required: list[str] = list(schema.get("required") or [])
        self._validator = Draft202012Validator(dict(schema))

    def parse(self, flat: Mapping[str, str]) -> dict[str, Any]:
        grouped = _group(flat, self._properties)
        for name in self._required:
            if grouped.get(name) in (None, ""):
                raise missing(name)
        params = {name: _coerce(name, self._properties[name], raw) for name, raw in grouped.items()}
        errors = sorted(self._validator.iter_errors(params), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            raise _schema_error(errors[0])
        return params


def _group(flat: Mapping[str, str], properties: Mapping[str, Any]) -> dict[str, Any]:
    """{"Tasks.1.ImageURL": v} -> {"Tasks": {1: {"ImageURL": v}}}; plain keys stay; unknown keys are dropped."""
    grouped: dict[str, Any] = {}
    for key, value in flat.items():
        if key in properties:
            grouped[key] = value
            continue
        top, _, rest = key.partition(".")
        index, _, sub = rest.partition(".")
        if top not in properties or not index.isdigit() or isinstance(grouped.get(top), str):
            continue
        items = grouped.setdefault(top, {})
        if sub:
            items.setdefault(int(index), {})[sub] = value
        else:
            items[int(index)] = value
    return grouped


def _coerce(name: str, schema: Mapping[str, Any], raw: Any) -> Any:
    kind = schema.get("type")
    if kind == "array":
        return _array(name, schema, raw)
    if kind == "object":
        return _object(name, schema, _json(name, raw) if isinstance(raw, str) else raw)
    if isinstance(raw, str) and kind in SCALARS:
        return SCALARS[kind](name, raw)
    return raw


def _array(name: str, schema: Mapping[str, Any], raw: Any) -> Any:
    if isinstance(raw, str):
        raw = _json(name, raw)
        if not isinstance(raw, list):
            raise invalid_parameter(name, "expected a list")
        items = list(raw)
    elif isinstance(raw, dict):
        items = [raw[index] for index in sorted(raw)]
    else:
        items = raw
    item_schema = schema.get("items") or {}
    return [_coerce(f"{name}.{i}", item_schema, item) for i, item in enumerate(items, start=1)]


def _object(name: str, schema: Mapping[str, Any], raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    by_lower = {key.lower(): key for key in schema.get("properties") or {}}
    result = {}
    for key, value in raw.items():
        known = by_lower.get(str(key).lower())
        if known is not None:
            result[known] = _coerce(f"{name}.{known}", schema["properties"][known], value)
    return result


def _json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise invalid_parameter(name, "expected a JSON value") from None


def _integer(name: str, raw: str) -> int:
    if not INTEGER.match(raw.strip()):
        raise invalid_parameter(name, f"expected an integer, got {raw[:40]!r}")
    return int(raw)


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise invalid_parameter(name, f"expected a number, got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise invalid_parameter(name, "expected a finite number")
    return value


def _boolean(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise invalid_parameter(name, f"expected True or False, got {raw[:40]!r}")
    return lowered == "true"


SCALARS: dict[str, Callable[[str, str], Any]] = {
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "string": lambda _name, raw: raw,
}


def _schema_error(error: ValidationError) -> ParameterError:
    path: JsonPath = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        required: Any = error.validator_value
        absent = next(str(r) for r in required if r not in error.instance)
        return missing(_dotted([*path, absent]))
    alternatives = _required_alternatives(error)
    if alternatives:
        return missing(_dotted([*path, alternatives[0]]))
    name = _dotted(path) or "request"
    if error.validator in ("pattern", "format") and name.lower().endswith("url"):
        return ParameterError("IllegalUrlParameter", f"Specified parameter {name} is not a valid http or https URL.")
    return invalid_parameter(name, _why(error))


def _required_alternatives(error: ValidationError) -> list[str]:
    """anyOf/oneOf of plain `required` lists (e.g. URL or imageData): the first name of each alternative."""
    options: Any = error.validator_value if error.validator in ("anyOf", "oneOf") else None
    if not isinstance(options, list) or not isinstance(error.instance, dict):
        return []
    if not all(isinstance(o, dict) and set(o) == {"required"} for o in options):
        return []
    if any(all(r in error.instance for r in o["required"]) for o in options):
        return []  # oneOf matched more than one: not a missing parameter
    return [str(o["required"][0]) for o in options]


def _why(error: ValidationError) -> str:
    value: Any = error.validator_value
    reasons = {
        "minItems": f"expected at least {value} items",
        "maxItems": f"expected at most {value} items",
        "minimum": f"must be at least {value}",
        "maximum": f"must be at most {value}",
        "minLength": f"must have at least {value} characters",
        "maxLength": f"must have at most {value} characters",
        "type": f"expected {value}",
        "enum": f"use one of {', '.join(map(str, value))}" if isinstance(value, list) else "not allowed",
    }
    return reasons.get(str(error.validator), error.message[:200])


def _dotted(path: JsonPath) -> str:
    return ".".join(str(part + 1) if isinstance(part, int) else part for part in path)
