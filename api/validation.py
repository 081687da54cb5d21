"""Tool input validation: one jsonschema validator per tool, built once, with the seed's error texts.

Valid input, the common case, is checked by a compiled validator first (jsonschema-rs, the same schema without
its `format`s, then each URL through `caller_url` once); anything it does not pass, python-jsonschema checks
again and has the last word: it finds every problem and names them. The two agree on the catalog's schemas
(tests/test_validation_fast.py compares them on generated input); a schema with a `format` the URL walk would not
reach is checked by python-jsonschema alone.

The texts, and how image and video URLs are checked and forwarded: docs/architecture.md, "Tool input and callers' URLs".
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

import jsonschema_rs
import msgspec
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from api.errors import ValidationFailed
from api.json_depth import too_deep
from shared.catalog import Catalog
from shared.netpolicy import ip_allowed
from shared.urls import CallerUrl, UrlRefused, caller_url

REQUIRED_MISSING = "required parameters are missing"
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}


@functools.lru_cache(maxsize=256)  # the catalog's few patterns, each rewritten once
def json_schema_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` as JSON Schema reads it (ECMA-262, as jsonschema-rs does): `$` outside a class is the end of the
    text. Python's `$` also matches before a final newline, so `^[0-9]{17}[0-9Xx]$` would pass an id number with
    a newline after it."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


def _pattern(validator: Any, pattern: str, instance: Any, _: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not json_schema_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 with JSON Schema's own `pattern` (the only keyword whose Python reading differs from the spec's)
ToolInputValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


class NonPublicAddress(ValueError):
    """A URL whose host is a private, loopback or otherwise non-public address the operator does not allow."""


def url_format(allowed_networks: tuple[str, ...]) -> FormatChecker:
    """The `uri` format: an http(s) URL caller_url passes, whose host, when it is an address, is public or in an
    allowed network."""
    checker = FormatChecker(formats=())

    @checker.checks("uri", raises=(UrlRefused, NonPublicAddress))
    def is_public_http_url(value: object) -> bool:
        if isinstance(value, str):
            public_url(value, allowed_networks)
        return True

    return checker


def public_url(value: str, allowed_networks: tuple[str, ...]) -> CallerUrl:
    """`value` as caller_url normalises it; raises UrlRefused, or NonPublicAddress when its host is an address
    neither public nor in an allowed network."""
    url = caller_url(value)
    if url.address is not None and not ip_allowed(url.address, allowed_networks):
        shown = url.host if len(url.host) <= 64 else url.host[:64] + "…"
        raise NonPublicAddress(f"{shown} is a private, loopback or link-local address")
    return url


class InputValidators:
    def __init__(self, catalog: Catalog, *, allowed_networks: tuple[str, ...] = ()) -> None:
        checker = url_format(allowed_networks)
        self._allowed_networks = allowed_networks
        self._validators = {
            service.id: ToolInputValidator(service.input_schema, format_checker=checker) for service in catalog
        }
        self._schemas = {service.id: service.input_schema for service in catalog}
        self._compiled = {
            service.id: jsonschema_rs.Draft202012Validator(service.input_schema, validate_formats=False)
            for service in catalog
            if formats_all_on_the_url_walk(service.input_schema)
        }

    def validate(self, service_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Returns the params to send (JSON-string arrays decoded, URLs normalised); raises ValidationFailed with
        every problem."""
        schema = self._schemas[service_id]
        params = _decode_json_string_arrays(params, schema)
        passed = self._compiled_pass(service_id, params, schema)
        if passed is not None:
            return passed
        errors = sorted(self._validators[service_id].iter_errors(params), key=_error_order)
        if errors:
            details = [detail for error in errors for detail in describe(error)]
            raise ValidationFailed(details[0]["message"], details=details)
        normalised: dict[str, Any] = _normalised_urls(params, schema, self._allowed_networks)
        return normalised

    def _compiled_pass(self, service_id: str, params: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
        """The params to send when the compiled validator and every URL pass them; None: python-jsonschema decides."""
        compiled = self._compiled.get(service_id)
        if compiled is None:
            return None
        try:
            if not compiled.is_valid(params):
                return None
            normalised: dict[str, Any] = _normalised_urls(params, schema, self._allowed_networks)
        except Exception:  # noqa: BLE001 - whatever the fast path cannot pass, the full validator judges
            return None
        return normalised


def _decode_json_string_arrays(params: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    decoded = dict(params)
    for name, value in params.items():
        if isinstance(value, str) and properties.get(name, {}).get("type") == "array" and not too_deep(value):
            with contextlib.suppress(msgspec.DecodeError):  # left as a string: validation says "an array"
                decoded[name] = msgspec.json.decode(value)
    return decoded


def _normalised_urls(value: Any, schema: Any, allowed_networks: tuple[str, ...]) -> Any:
    """`value` with each `format: uri` string as caller_url normalises it; raises UrlRefused or NonPublicAddress
    for one the `uri` format refuses. Reaches the strings under `properties` and `items` (see
    `formats_all_on_the_url_walk`)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, str) and _is_url_schema(schema):
        return public_url(value, allowed_networks).url
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {name: _normalised_urls(item, properties.get(name), allowed_networks) for name, item in value.items()}
    if isinstance(value, list):
        return [_normalised_urls(item, schema.get("items"), allowed_networks) for item in value]
    return value


def _walked_formats(schema: Any) -> int:
    """The `format` keywords `_normalised_urls` reaches: the schema's own, its properties' and its items'."""
    if not isinstance(schema, dict):
        return 0
    properties = schema.get("properties")
    below = list(properties.values()) if isinstance(properties, dict) else []
    return int("format" in schema) + sum(map(_walked_formats, [*below, schema.get("items")]))


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in `value`, itself included (subschemas, and whatever else holds a `format` key)."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def formats_all_on_the_url_walk(schema: dict[str, Any]) -> bool:
    """Whether every `format` of `schema` is a `uri` that `_normalised_urls` checks (only then may the compiled
    validator, which skips formats, pass input without python-jsonschema). Any object with a `format` key counts,
    a subschema or not: what is not sure stays on python-jsonschema."""
    objects = list(_objects(schema))
    if any("$ref" in found or "$dynamicRef" in found for found in objects):
        return False  # a reference could lead anywhere
    formats = [found["format"] for found in objects if "format" in found]
    return all(name == "uri" for name in formats) and _walked_formats(schema) == len(formats)


def _error_order(error: ValidationError) -> tuple[int, str]:
    # Missing fields first (as the seed reports them), then by location.
    return (0 if error.validator == "required" else 1, "/".join(map(str, error.absolute_path)))


def field_name(path: Iterable[Any]) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def describe(error: ValidationError) -> list[dict[str, str]]:
    field = field_name(error.absolute_path)
    kind = error.validator
    if kind == "required":
        return _missing(error)
    if kind in ("format", "pattern") and _is_url_schema(error.schema):
        return [_detail(field, _url_message(error, field))]
    if kind == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else "valid"
        return [_detail(field, f"{field} must be {_TYPE_NAMES.get(expected, expected)}")]
    if kind == "additionalProperties":
        names = [f"{_prefix(field)}{name}" for name in _extra(error)]
        return [_detail(name, f"unknown parameter {name}") for name in names]
    if kind == "anyOf":
        return [_detail(field, _any_of_message(error, field))]
    return [_detail(field, f"{field} {_short(error)}")]


def _url_message(error: ValidationError, field: str) -> str:
    if isinstance(error.cause, NonPublicAddress):
        return f"{field} must be a public http or https URL: {error.cause}"
    invalid = f"{field} must be a valid http or https URL"
    return error.cause.explained(invalid) if isinstance(error.cause, UrlRefused) else invalid


def _missing(error: ValidationError) -> list[dict[str, str]]:
    prefix = _prefix(field_name(error.absolute_path))
    properties = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    required: Any = error.validator_value
    instance: Any = error.instance
    missing = [name for name in required if name not in instance]
    details = []
    for name in missing:
        if _is_url_schema(properties.get(name, {})):
            details.append(_detail(prefix + name, f"{prefix}{name} is required"))
        else:
            details.append(_detail(prefix + name, REQUIRED_MISSING))
    return details


def _any_of_message(error: ValidationError, field: str) -> str:
    subschemas: Any = error.validator_value
    options = [" and ".join(sub.get("required", [])) for sub in subschemas if isinstance(sub, dict)]
    options = [option for option in options if option]
    where = "" if field == "body" else f" in {field}"
    if options:
        return f"one of {' or '.join(options)} is required{where}"
    return f"{field} does not match any allowed form"


def _extra(error: ValidationError) -> list[str]:
    allowed = set(error.schema.get("properties", {})) if isinstance(error.schema, dict) else set()
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(name for name in instance if name not in allowed)


_SHORT_MESSAGES: dict[str, str] = {
    "minItems": "must have at least {} item(s)",
    "maxItems": "must have at most {} item(s)",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "exclusiveMinimum": "must be greater than {}",
    "exclusiveMaximum": "must be less than {}",
    "minLength": "must be at least {} character(s) long",
    "maxLength": "must be at most {} character(s) long",
    "const": "must be {!r}",
}


def _short(error: ValidationError) -> str:
    value: Any = error.validator_value
    if error.validator == "enum" and isinstance(value, list):
        return "must be one of " + ", ".join(map(str, value))
    template = _SHORT_MESSAGES.get(str(error.validator))
    return template.format(value) if template else "is not valid"


def _is_url_schema(schema: object) -> bool:
    return isinstance(schema, dict) and schema.get("format") == "uri"


def _prefix(field: str) -> str:
    return "" if field == "body" else f"{field}."


def _detail(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}
