"""Tool input validation: one jsonschema validator per tool, built once, with the seed's error texts.

The texts, and how image and video URLs are checked and forwarded: docs/architecture.md, "Tool input and callers' URLs".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import msgspec
from jsonschema import Draft202012Validator, FormatChecker, ValidationError

from api.errors import ValidationFailed
from api.json_depth import too_deep
from shared.catalog import Catalog
from shared.netpolicy import ip_allowed
from shared.urls import UrlRefused, caller_url

REQUIRED_MISSING = "required parameters are missing"
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}


class NonPublicAddress(ValueError):
    """A URL whose host is a private, loopback or otherwise non-public address the operator does not allow."""


def url_format(allowed_networks: tuple[str, ...]) -> FormatChecker:
    """The `uri` format: an http(s) URL caller_url passes, whose host, when it is an address, is public or in an
    allowed network."""
    checker = FormatChecker(formats=())

    @checker.checks("uri", raises=(UrlRefused, NonPublicAddress))
    def is_public_http_url(value: object) -> bool:
        if isinstance(value, str):
            url = caller_url(value)
            if url.address is not None and not ip_allowed(url.address, allowed_networks):
                shown = url.host if len(url.host) <= 64 else url.host[:64] + "…"
                raise NonPublicAddress(f"{shown} is a private, loopback or link-local address")
        return True

    return checker


class InputValidators:
    def __init__(self, catalog: Catalog, *, allowed_networks: tuple[str, ...] = ()) -> None:
        checker = url_format(allowed_networks)
        self._validators = {
            service.id: Draft202012Validator(service.input_schema, format_checker=checker) for service in catalog
        }
        self._schemas = {service.id: service.input_schema for service in catalog}

    def validate(self, service_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Returns the params to send (JSON-string arrays decoded, URLs normalised); raises ValidationFailed with
        every problem."""
        validator = self._validators[service_id]
        params = _decode_json_string_arrays(params, self._schemas[service_id])
        errors = sorted(validator.iter_errors(params), key=_error_order)
        if errors:
            details = [detail for error in errors for detail in describe(error)]
            raise ValidationFailed(details[0]["message"], details=details)
        normalised: dict[str, Any] = _normalised_urls(params, self._schemas[service_id])
        return normalised


def _decode_json_string_arrays(params: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties", {})
    decoded = dict(params)
    for name, value in params.items():
        if isinstance(value, str) and properties.get(name, {}).get("type") == "array" and not too_deep(value):
            with contextlib.suppress(msgspec.DecodeError):  # left as a string: validation says "an array"
                decoded[name] = msgspec.json.decode(value)
    return decoded


def _normalised_urls(value: Any, schema: Any) -> Any:
    """`value` (valid for `schema`) with each `format: uri` string as caller_url normalises it."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, str) and _is_url_schema(schema):
        return caller_url(value).url
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {name: _normalised_urls(item, properties.get(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [_normalised_urls(item, schema.get("items")) for item in value]
    return value


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
