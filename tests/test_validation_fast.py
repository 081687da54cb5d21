"""The compiled validator (jsonschema-rs, api/validation.py) passes exactly the tool input python-jsonschema passes,
on every schema of the catalog: Hypothesis draws input from each schema (the right types and the wrong ones,
values at and past each bound, strings for each pattern and Unicode look-alikes, URLs public, private and
malformed, arrays sent as JSON text, unknown fields) and both must give the same verdict, and the same
normalised input when they pass it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.validation import InputValidators, _decode_json_string_arrays, _normalised_urls, formats_all_on_the_url_walk
from shared.catalog import Catalog

URLS = (
    "https://images.example.com/face.jpg", "HTTPS://Images.Example.COM:443/a b.jpg", "http://example.com/x?y=1#z",
    "http://10.0.0.7/a.jpg", "https://127.0.0.1/x", "https://[::1]/a", "https://0x7f000001/", "ftp://example.com/a",
    "https://user@example.com/a", "https://例え.jp/a.png", "https://example.com\u3002evil/", "not a url", "",
    "https://", "https://example.com:99999/", "//example.com/a", "https://exa mple.com/", "https://example.com/\u202e",
)  # fmt: skip
LOOKALIKES = ("١٢٣", "１２３", "12\u200b3", "x" * 65, "Ab_09", "abc", "ABC", "a-b")
NEWLINES = ("abc\n", "11010519491231002X\n", "\nabc")  # Python's `$` matches before a final newline
WILD = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.sampled_from(URLS), st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a", "ImageURL"]), st.integers(), max_size=2),
)  # fmt: skip


def values(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    if not isinstance(schema, dict) or depth > 3:
        return WILD
    kind, options = schema.get("type"), [WILD]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -5), schema.get("maximum", 1000)
        edges = [low, high, low - 1, high + 1, float(low)]
        options += [st.integers(int(low) - 2, int(high) + 2), st.sampled_from(edges)]
        if kind == "number":
            options.append(st.floats(low - 1, high + 1))
    if kind == "boolean":
        options.append(st.booleans())
    if kind == "string":
        if schema.get("format") == "uri":
            options.append(st.sampled_from(URLS))
        if "pattern" in schema:
            options.append(st.from_regex(schema["pattern"]))
        options.append(st.sampled_from(LOOKALIKES + NEWLINES))
    if kind == "array":
        items = st.lists(values(schema.get("items"), depth + 1), max_size=schema.get("maxItems", 3) + 1)
        options += [items, items.map(json.dumps)]  # an array may come as JSON text
    if kind == "object" or "properties" in schema:
        options.append(objects(schema, depth))
    return st.one_of(options)


def objects(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    known = st.fixed_dictionaries({}, optional={name: values(sub, depth + 1) for name, sub in properties.items()})
    unknown = st.dictionaries(st.sampled_from(["Unknown", "imageurl", ""]), WILD, max_size=1)
    return st.builds(lambda a, b, extra: {**a, **(b if extra else {})}, known, unknown, st.booleans())


@pytest.fixture(scope="module")
def validators(catalog: Catalog) -> InputValidators:
    return InputValidators(catalog)


def test_every_catalog_schema_has_a_compiled_validator(catalog: Catalog, validators: InputValidators) -> None:
    assert {service.id for service in catalog} == set(validators._compiled)


@settings(max_examples=1500, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(data=st.data())
def test_the_compiled_validator_passes_what_jsonschema_passes_and_nothing_else(
    data: st.DataObject, catalog: Catalog, validators: InputValidators
) -> None:
    service = data.draw(st.sampled_from(sorted(catalog, key=lambda s: s.id)), label="service")
    schema = service.input_schema
    params = _decode_json_string_arrays(data.draw(objects(schema), label="params"), schema)
    compiled = validators._compiled_pass(service.id, params, schema)
    errors = list(validators._validators[service.id].iter_errors(params))
    assert (compiled is not None) == (not errors), (service.id, params, [e.message for e in errors])
    if compiled is not None:
        assert compiled == _normalised_urls(params, schema, ())


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"properties": {"u": {"type": "string", "format": "uri"}}}]},
        {"properties": {"u": {"$ref": "#/$defs/url"}}, "$defs": {"url": {"type": "string", "format": "uri"}}},
        {"additionalProperties": {"type": "string", "format": "uri"}},
        {"properties": {"when": {"type": "string", "format": "date-time"}}},
        {"properties": {"list": {"type": "array", "items": [{"type": "string", "format": "uri"}]}}},
    ],
)
def test_a_format_the_url_walk_would_not_reach_keeps_the_schema_on_python_jsonschema(schema: dict[str, Any]) -> None:
    assert not formats_all_on_the_url_walk(schema)


def test_formats_on_properties_and_items_are_on_the_walk() -> None:
    url = {"type": "string", "format": "uri"}
    nested = {"properties": {"u": url, "list": {"type": "array", "items": {"properties": {"u": url}}}}}
    assert formats_all_on_the_url_walk(nested)


@pytest.mark.parametrize(
    ("service_id", "params"),
    [
        ("face-database-create", {"Name": "abc\n"}),
        ("face-database-create", {"Name": "abc\n\n"}),
    ],
)
def test_a_pattern_ending_in_dollar_refuses_a_final_newline_on_both_paths(
    validators: InputValidators, catalog: Catalog, service_id: str, params: dict[str, Any]
) -> None:
    schema = catalog.resolve(service_id).input_schema
    assert validators._compiled_pass(service_id, params, schema) is None
    assert list(validators._validators[service_id].iter_errors(params))  # python-jsonschema reads `$` as the spec
