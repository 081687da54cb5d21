"""Generate `shared/data/tools.json` (contract: docs/catalog-data.md) from the Alibaba SDKs plus hand curation.

    python -m scripts.gen_catalog             write shared/data/tools.json
    python -m scripts.gen_catalog --check     exit 1 with a short diff summary when the committed file is stale
    python -m scripts.gen_catalog --out PATH  write somewhere else

Read from the installed SDKs, never typed by hand: the actions and their SDK method stems, request classes and
HTTP methods, every parameter's wire name, type, `required` flag (the "This parameter is required." comment
before `self.x = x`) and location (`query` / `body`, from the `<stem>with_options_async` source), and the result
schema (the response body's `Data` model, `Result` for FaceLivenessV2). Everything else comes from
`scripts/curation`. The output is deterministic: entries sorted by id, properties sorted by name, no timestamps.

Wire types in `fields`: string, integer, number, boolean, `array` (a list the SDK form-flattens as
`Tasks.1.ImageURL`) and `json` (a list the SDK sends as one JSON-encoded string, e.g. BatchAddFaces `Faces`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
from alibabacloud_cloudauth_intl20220809 import client as cloudauth_client
from alibabacloud_cloudauth_intl20220809 import models as cloudauth_models
from alibabacloud_facebody20191230 import client as facebody_client
from alibabacloud_facebody20191230 import models as facebody_models

from scripts.curation import CURATION, FIELD_DESCRIPTIONS
from scripts.curation.model import CATEGORIES, COMPLEXITIES, ToolCuration

TOOLS_FILE = Path(__file__).resolve().parent.parent / "shared" / "data" / "tools.json"
FACEBODY_ACTION_COUNT = 43

# Canonical public id per Alibaba action (fixed: published URLs and MCP tool names depend on it).
CANONICAL_IDS = {
    "BodyPosture": "body-pose-estimation",
    "DetectFace": "face-detection",
    "DetectCelebrity": "celebrity-recognition",
    "DetectLivingFace": "face-liveness-detection",
    "CreateFaceDb": "face-database-create",
    "DetectInfraredLivingFace": "infrared-face-liveness-detection",
    "FaceBeauty": "face-beauty-retouching",
    "EnhanceFace": "face-enhancement",
    "RecognizeExpression": "facial-expression-recognition",
    "DeepfakeFace": "deepfake-detection",
    "DetectVideoLivingFace": "video-face-liveness-detection",
    "CompareFace": "face-comparison",
    "AddFace": "face-database-add-face",
    "AddFaceEntity": "face-database-create-entity",
    "AddFaceImageTemplate": "face-template-create",
    "DeleteFaceDb": "face-database-delete",
    "ListFaceDbs": "face-database-list",
    "DeleteFaceEntity": "face-database-delete-entity",
    "GetFaceEntity": "face-database-get-entity",
    "ListFaceEntities": "face-database-list-entities",
    "UpdateFaceEntity": "face-database-update-entity",
    "BatchAddFaces": "face-database-batch-add-faces",
    "DeleteFace": "face-database-delete-face",
    "SearchFace": "face-database-search",
    "BlurFace": "face-blur",
    "LiquifyFace": "face-slimming",
    "RetouchSkin": "skin-retouching",
    "GenerateHumanAnimeStyle": "anime-style-portrait",
    "GenerateHumanSketchStyle": "sketch-style-portrait",
    "MergeImageFace": "face-fusion",
    "RecognizeFace": "face-attribute-recognition",
    "RecognizePublicFace": "public-figure-recognition",
    "ExtractFingerPrint": "face-fingerprint-extraction",
    "DetectBodyCount": "body-counting",
    "DetectPedestrian": "pedestrian-detection",
    "PedestrianDetectAttribute": "pedestrian-attribute-recognition",
    "RecognizeAction": "action-recognition",
    "MonitorExamination": "exam-monitoring",
    "CompareFaceWithMask": "masked-face-comparison",
    "DeleteFaceImageTemplate": "face-template-delete",
    "QueryFaceImageTemplate": "face-template-query",
    "GenRealPersonVerificationToken": "real-person-verification-token",
    "GetRealPersonVerificationResult": "real-person-verification-result",
    "FaceLivenessV2": "face-liveness-v2",
}


@dataclass(frozen=True)
class Product:
    name: str
    version: str
    client: type
    models: ModuleType
    legacy_prefix: str
    only_actions: frozenset[str] | None  # None: every action the client has


PRODUCTS = (
    Product("facebody", "2019-12-30", facebody_client.Client, facebody_models, "aliyun-facebody-", None),
    Product(
        "cloudauth-intl",
        "2022-08-09",
        cloudauth_client.Client,
        cloudauth_models,
        "aliyun-cloudauth-",
        frozenset({"FaceLivenessV2"}),
    ),
)


@dataclass(frozen=True)
class ModelField:
    wire_name: str
    attr: str
    annotation: Any
    required: bool


@dataclass(frozen=True)
class SdkAction:
    product: Product
    action: str
    sdk_method: str
    request_class: type
    http_method: str
    fields: tuple[ModelField, ...]
    locations: dict[str, str]  # wire name -> query | body
    json_encoded: frozenset[str]  # wire names the SDK sends as a JSON string
    result_model: type | None


# ---------------------------------------------------------------- SDK introspection

OPTIONS_SUFFIX = "with_options_async"
REQUIRED_MARK = "This parameter is required."
SELF_ASSIGN = re.compile(r"self\.(\w+)\s*=\s*\w+$")
ASSIGN_TO_WIRE = re.compile(r"\b(query|body)\['(\w+)'\]\s*=\s*request\.(\w+)")
JSON_SHRINK = re.compile(
    r"request\.(\w+)\s*=\s*\w+\.array_to_string_with_specified_style\(\s*tmp_req\.\w+,\s*'(\w+)',\s*'json'"
)
WHOLE_REQUEST_QUERY = re.compile(r"query\s*=\s*\w+\.query\(\s*\w+\.to_map\(request\)\s*\)")
SCALAR_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
URL_FIELD = re.compile(r"(URL|Url)[AB]?$")


def is_model(annotation: Any) -> bool:
    return inspect.isclass(annotation) and hasattr(annotation, "to_map") and hasattr(annotation, "from_map")


def list_item(annotation: Any) -> Any | None:
    """The item type of a `List[X]` annotation, else None."""
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0]
    return None


def is_url_field(wire_name: str) -> bool:
    return bool(URL_FIELD.search(wire_name))


def constructor(model: type) -> Any:
    """The model's own `__init__` (every SDK model defines one); its annotations and source describe the fields."""
    return vars(model)["__init__"]


def required_attrs(model: type) -> set[str]:
    """Attributes whose assignment in `__init__` follows a "This parameter is required." comment."""
    required: set[str] = set()
    marked = False
    for line in inspect.getsource(constructor(model)).splitlines():
        text = line.strip()
        if text.startswith("#"):
            marked = marked or text.lstrip("#").strip() == REQUIRED_MARK
        elif match := SELF_ASSIGN.match(text):
            if marked:
                required.add(match[1])
            marked = False
    return required


def sample_value(annotation: Any) -> Any:
    if (item := list_item(annotation)) is not None:
        return [sample_value(item)]
    if is_model(annotation):
        return annotation()
    samples = {str: "x", int: 7, float: 1.5, bool: True}
    if annotation not in samples:
        raise TypeError(f"unsupported SDK annotation {annotation!r}")
    return samples[annotation]


def wire_name(model: type, attr: str, annotation: Any) -> str:
    """The key `to_map()` writes for one attribute: set only that attribute and see which key changes."""
    baseline = model().to_map()
    instance = model()
    setattr(instance, attr, sample_value(annotation))
    changed = [key for key, value in instance.to_map().items() if baseline.get(key, ...) != value]
    if len(changed) != 1:
        raise RuntimeError(f"{model.__name__}.{attr}: to_map() changed {changed}, expected one key")
    return str(changed[0])


def model_fields(model: type) -> tuple[ModelField, ...]:
    hints = typing.get_type_hints(constructor(model))
    hints.pop("return", None)
    required = required_attrs(model)
    fields = [ModelField(wire_name(model, attr, hint), attr, hint, attr in required) for attr, hint in hints.items()]
    return tuple(sorted(fields, key=lambda field: field.wire_name))


def params_value(source: str, key: str) -> str:
    match = re.search(rf"\b{key}\s*=\s*'([^']*)'", source)
    if match is None:
        raise RuntimeError(f"no {key}= in SDK method source")
    return match[1]


def wire_locations(source: str, fields: tuple[ModelField, ...], shrunk: dict[str, str]) -> dict[str, str]:
    if WHOLE_REQUEST_QUERY.search(source):
        return {field.wire_name: "query" for field in fields}
    attrs = {field.attr: field.wire_name for field in fields}
    attrs.update({shrunk_attr: attrs[attr] for shrunk_attr, attr in shrunk.items()})
    return {attrs[attr]: location for location, _, attr in ASSIGN_TO_WIRE.findall(source)}


def shrunk_attrs(source: str, fields: tuple[ModelField, ...]) -> dict[str, str]:
    """`faces_shrink` -> `faces` for lists the SDK JSON-encodes before sending."""
    by_wire = {field.wire_name: field.attr for field in fields}
    return {shrunk: by_wire[wire] for shrunk, wire in JSON_SHRINK.findall(source)}


def result_model(response_class: type) -> type | None:
    body = typing.get_type_hints(constructor(response_class))["body"]
    body_hints = typing.get_type_hints(constructor(body))
    return body_hints.get("data") or body_hints.get("result")


def read_action(product: Product, method_name: str) -> SdkAction:
    method = getattr(product.client, method_name)
    source = inspect.getsource(method)
    hints = typing.get_type_hints(method)
    request_param = list(inspect.signature(method).parameters)[1]
    request_class = hints[request_param]
    fields = model_fields(request_class)
    shrunk = shrunk_attrs(source, fields)
    locations = wire_locations(source, fields, shrunk)
    missing = [field.wire_name for field in fields if field.wire_name not in locations]
    if missing:
        raise RuntimeError(f"{method_name}: no wire location for {missing}")
    return SdkAction(
        product=product,
        action=params_value(source, "action"),
        sdk_method=method_name,
        request_class=request_class,
        http_method=params_value(source, "method"),
        fields=fields,
        locations=locations,
        json_encoded=frozenset(field.wire_name for field in fields if field.attr in shrunk.values()),
        result_model=result_model(hints["return"]),
    )


def discover_actions(product: Product) -> list[SdkAction]:
    actions = []
    for method_name in sorted(dir(product.client)):
        if not method_name.endswith(OPTIONS_SUFFIX):
            continue
        source = inspect.getsource(getattr(product.client, method_name))
        if product.only_actions is None or params_value(source, "action") in product.only_actions:
            actions.append(read_action(product, method_name))
    return actions


def all_actions() -> list[SdkAction]:
    facebody, cloudauth = (discover_actions(product) for product in PRODUCTS)
    if len(facebody) != FACEBODY_ACTION_COUNT:
        raise RuntimeError(f"found {len(facebody)} facebody actions, expected {FACEBODY_ACTION_COUNT}: SDK changed?")
    if [action.action for action in cloudauth] != ["FaceLivenessV2"]:
        raise RuntimeError("cloudauth-intl FaceLivenessV2 not found in the SDK")
    actions = facebody + cloudauth
    unknown = sorted({action.action for action in actions} ^ set(CANONICAL_IDS))
    if unknown:
        raise RuntimeError(f"actions without a canonical id, or ids without an action: {unknown}")
    return actions


# ---------------------------------------------------------------- schemas


def join_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def scalar_type(annotation: Any) -> str:
    if annotation not in SCALAR_TYPES:
        raise TypeError(f"unsupported scalar annotation {annotation!r}")
    return SCALAR_TYPES[annotation]


def input_property(field: ModelField, path: str, curation: ToolCuration) -> dict[str, Any]:
    item = list_item(field.annotation)
    if item is not None and is_model(item):
        schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": input_object(item, path, curation)}
    elif item is not None:
        schema = {"type": "array", "items": {"type": scalar_type(item)}}
    else:
        schema = {"type": scalar_type(field.annotation)}
    if is_url_field(field.wire_name) and schema["type"] == "string":
        schema.update({"format": "uri", "pattern": "^https?://"})
    if field.wire_name in FIELD_DESCRIPTIONS:
        schema["description"] = FIELD_DESCRIPTIONS[field.wire_name]
    schema.update(curation.field_schemas.get(path, {}))
    if not schema.get("description"):
        raise RuntimeError(f"no description for parameter {path}")
    return schema


def any_of_rule(groups: list[list[str]]) -> dict[str, Any]:
    rules = [{"anyOf": [{"required": [name]} for name in group]} for group in groups]
    return rules[0] if len(rules) == 1 else {"allOf": rules}


def input_object(model: type, path: str, curation: ToolCuration) -> dict[str, Any]:
    top_level = not path
    fields = [
        field for field in model_fields(model) if not top_level or field.wire_name not in curation.excluded_fields
    ]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            field.wire_name: input_property(field, join_path(path, field.wire_name), curation) for field in fields
        },
        "additionalProperties": False,
    }
    required = {field.wire_name for field in fields if field.required}
    if top_level:
        required.update(curation.extra_required)
    if required:
        schema["required"] = sorted(required)
    groups = curation.any_of if top_level else curation.item_any_of.get(path, [])
    if groups:
        schema.update(any_of_rule(groups))
    return schema


def result_schema(annotation: Any) -> dict[str, Any]:
    if annotation is None:
        return {"type": "object", "properties": {}}
    if (item := list_item(annotation)) is not None:
        return {"type": "array", "items": result_schema(item)}
    if is_model(annotation):
        return {
            "type": "object",
            "properties": {field.wire_name: result_schema(field.annotation) for field in model_fields(annotation)},
        }
    return {"type": scalar_type(annotation)}


# ---------------------------------------------------------------- entries


def kebab_case(action: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", action).lower()


def wire_fields(action: SdkAction, excluded: list[str]) -> list[dict[str, str]]:
    def wire_type(field: ModelField) -> str:
        if field.wire_name in action.json_encoded:
            return "json"
        return "array" if list_item(field.annotation) is not None else scalar_type(field.annotation)

    return [
        {"name": field.wire_name, "location": action.locations[field.wire_name], "type": wire_type(field)}
        for field in action.fields
        if field.wire_name not in excluded
    ]


def input_types(input_schema: dict[str, Any]) -> list[str]:
    types = ["object"]
    for prop in input_schema["properties"].values():
        types.append(prop["type"])
        if prop.get("format") == "uri":
            types.append("uri")
    return list(dict.fromkeys(types))


def has_url_field(schema: dict[str, Any]) -> bool:
    properties = schema.get("properties", {})
    if any(is_url_field(name) for name in properties):
        return True
    children = [*properties.values(), *([schema["items"]] if "items" in schema else [])]
    return any(has_url_field(child) for child in children)


def output_types(result: dict[str, Any]) -> list[str]:
    """As in the seed (object, string), plus uri when the result carries a URL (e.g. an edited image)."""
    return ["object", "string", "uri"] if has_url_field(result) else ["object", "string"]


def error_examples(input_schema: dict[str, Any], example: dict[str, Any]) -> list[dict[str, Any]]:
    """One broken request per validator rule, each breaking exactly one thing in the valid example."""
    examples = []
    other_missing_shown = False
    for name in input_schema.get("required", []):
        without = {key: value for key, value in example.items() if key != name}
        if is_url_field(name):
            examples.append({"input": without, "error": f"{name} is required", "statusCode": 400})
        elif not other_missing_shown:
            examples.append({"input": without, "error": "required parameters are missing", "statusCode": 400})
            other_missing_shown = True
    for name, prop in input_schema["properties"].items():
        if prop.get("format") == "uri":
            bad = {**example, name: "not-a-url"}
            examples.append({"input": bad, "error": f"{name} must be a valid http or https URL", "statusCode": 400})
    return examples


def build_entry(action: SdkAction, curation: ToolCuration) -> dict[str, Any]:
    tool_id = CANONICAL_IDS[action.action]
    input_schema = input_object(action.request_class, "", curation)
    result = result_schema(action.result_model)
    return {
        "id": tool_id,
        "legacyId": action.product.legacy_prefix + kebab_case(action.action),
        "toolName": tool_id.replace("-", "_"),
        "product": action.product.name,
        "version": action.product.version,
        "action": action.action,
        "sdkMethod": action.sdk_method,
        "requestClass": action.request_class.__name__,
        "httpMethod": action.http_method,
        "name": curation.name,
        "nameZh": curation.name_zh,
        "description": curation.description,
        "descriptionZh": curation.description_zh,
        "descriptionForModel": curation.description_for_model,
        "category": curation.category,
        "keywords": curation.keywords,
        "aliases": curation.aliases,
        "useCases": curation.use_cases,
        "limitations": curation.limitations,
        "tags": curation.tags,
        "inputTypes": input_types(input_schema),
        "outputTypes": output_types(result),
        "inputSchema": input_schema,
        "resultSchema": result,
        "exampleRequest": curation.example_request,
        "exampleResult": curation.example_result,
        "relatedServices": curation.related_services,
        "requiredContext": curation.required_context,
        "errorExamples": error_examples(input_schema, curation.example_request),
        "complexity": curation.complexity,
        "typicalResponseTime": curation.typical_response_time,
        "cacheable": curation.cacheable,
        "idempotent": curation.idempotent,
        "limits": curation.limits,
        "fields": wire_fields(action, curation.excluded_fields),
    }


# ---------------------------------------------------------------- checks and output


def check_entry(entry: dict[str, Any], known_ids: set[str]) -> None:
    tool = entry["id"]
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    jsonschema.Draft202012Validator(entry["inputSchema"], format_checker=checker).validate(entry["exampleRequest"])
    jsonschema.Draft202012Validator(entry["resultSchema"], format_checker=checker).validate(entry["exampleResult"])
    if entry["category"] not in CATEGORIES or entry["complexity"] not in COMPLEXITIES:
        raise RuntimeError(f"{tool}: unknown category or complexity")
    related = entry["relatedServices"]
    if not 2 <= len(related) <= 5 or tool in related or not set(related) <= known_ids:
        raise RuntimeError(f"{tool}: relatedServices must be 2-5 other existing ids, got {related}")


def build_catalog() -> list[dict[str, Any]]:
    actions = all_actions()
    missing = sorted({action.action for action in actions} - set(CURATION))
    if missing:
        raise RuntimeError(f"no curation for {missing}")
    entries = sorted((build_entry(action, CURATION[action.action]) for action in actions), key=lambda e: e["id"])
    known_ids = {entry["id"] for entry in entries}
    for entry in entries:
        check_entry(entry, known_ids)
    return entries


def render_catalog() -> str:
    return json.dumps(build_catalog(), indent=2, ensure_ascii=False) + "\n"


def diff_summary(committed: str, fresh: str) -> str:
    try:
        old = {entry["id"]: entry for entry in json.loads(committed)}
    except ValueError:
        return "committed file is not valid JSON"
    new = {entry["id"]: entry for entry in json.loads(fresh)}
    lines = [f"+ {tool}" for tool in sorted(new.keys() - old.keys())]
    lines += [f"- {tool}" for tool in sorted(old.keys() - new.keys())]
    for tool in sorted(old.keys() & new.keys()):
        keys = sorted(key for key in old[tool].keys() | new[tool].keys() if old[tool].get(key) != new[tool].get(key))
        if keys:
            lines.append(f"~ {tool}: {', '.join(keys)}")
    return "\n".join(lines) or "formatting differs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.gen_catalog", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    parser.add_argument("--out", type=Path, default=TOOLS_FILE, help="output path")
    args = parser.parse_args(argv)
    fresh = render_catalog()
    if args.check:
        committed = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if committed == fresh:
            return 0
        print(f"{args.out} is stale; run `python -m scripts.gen_catalog`:", file=sys.stderr)
        print(diff_summary(committed or "[]", fresh), file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(fresh, encoding="utf-8")
    print(f"wrote {len(json.loads(fresh))} tools to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
