"""The generated catalog data (shared/data/tools.json) against its contract in docs/catalog-data.md."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scripts.gen_catalog import CANONICAL_IDS, TOOLS_FILE, is_url_field, render_catalog

REFERENCE_ACTIONS = Path("/work/shared/notes/facebody-actions.json")
CONTRACT_KEYS = [
    "id",
    "legacyId",
    "toolName",
    "product",
    "version",
    "action",
    "sdkMethod",
    "requestClass",
    "httpMethod",
    "name",
    "nameZh",
    "description",
    "descriptionZh",
    "descriptionForModel",
    "category",
    "keywords",
    "aliases",
    "useCases",
    "limitations",
    "tags",
    "inputTypes",
    "outputTypes",
    "inputSchema",
    "resultSchema",
    "exampleRequest",
    "exampleResult",
    "relatedServices",
    "requiredContext",
    "errorExamples",
    "complexity",
    "typicalResponseTime",
    "cacheable",
    "idempotent",
    "limits",
    "fields",
]
STATE_CHANGING_ACTIONS = {
    "CreateFaceDb",
    "DeleteFaceDb",
    "AddFaceEntity",
    "DeleteFaceEntity",
    "UpdateFaceEntity",
    "AddFace",
    "BatchAddFaces",
    "DeleteFace",
    "AddFaceImageTemplate",
    "DeleteFaceImageTemplate",
    "GenRealPersonVerificationToken",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


@cache
def committed_text() -> str:
    return TOOLS_FILE.read_text(encoding="utf-8")


def entries() -> list[dict[str, Any]]:
    return json.loads(committed_text())


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of a result schema that rejects unknown keys at every level, so example typos fail."""
    strict = copy.deepcopy(schema)
    pending = [strict]
    while pending:
        node = pending.pop()
        if "properties" in node:
            node["additionalProperties"] = False
            pending.extend(node["properties"].values())
        if "items" in node:
            pending.append(node["items"])
    return strict


def test_regenerating_the_catalog_changes_nothing() -> None:
    assert render_catalog() == committed_text()


def test_file_is_sorted_by_id_and_ends_with_a_newline() -> None:
    ids = [entry["id"] for entry in entries()]
    assert ids == sorted(ids)
    assert committed_text().endswith("]\n")


def test_every_entry_has_exactly_the_contract_keys_in_order() -> None:
    for entry in entries():
        assert list(entry) == CONTRACT_KEYS, entry["id"]


def test_entries_decode_as_the_runtime_tool_spec() -> None:
    models = pytest.importorskip("shared.models")
    msgspec = pytest.importorskip("msgspec")
    specs = msgspec.json.decode(committed_text().encode(), type=list[models.ToolSpec])
    assert len(specs) == 44


def test_catalog_has_the_43_facebody_actions_and_face_liveness_v2_once_each() -> None:
    facebody = [entry["action"] for entry in entries() if entry["product"] == "facebody"]
    cloudauth = [entry["action"] for entry in entries() if entry["product"] == "cloudauth-intl"]
    assert len(facebody) == 43
    assert len(set(facebody)) == 43
    assert cloudauth == ["FaceLivenessV2"]
    assert {entry["version"] for entry in entries() if entry["product"] == "facebody"} == {"2019-12-30"}
    assert {entry["action"]: entry["id"] for entry in entries()} == CANONICAL_IDS


def test_ids_legacy_ids_and_tool_names_are_unique_and_well_formed() -> None:
    keys = [key for entry in entries() for key in (entry["id"], entry["legacyId"], entry["toolName"])]
    assert len(keys) == len(set(keys)) == 3 * 44
    for entry in entries():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry["id"])
        assert entry["toolName"] == entry["id"].replace("-", "_")
        assert entry["legacyId"].startswith(("aliyun-facebody-", "aliyun-cloudauth-"))
    legacy = {entry["action"]: entry["legacyId"] for entry in entries()}
    assert legacy["DetectLivingFace"] == "aliyun-facebody-detect-living-face"
    assert legacy["BodyPosture"] == "aliyun-facebody-body-posture"
    assert legacy["FaceLivenessV2"] == "aliyun-cloudauth-face-liveness-v2"


def test_every_example_request_is_valid_input() -> None:
    for entry in entries():
        validator(entry["inputSchema"]).validate(entry["exampleRequest"])


def test_every_example_result_matches_the_result_schema_without_unknown_keys() -> None:
    for entry in entries():
        validator(entry["resultSchema"]).validate(entry["exampleResult"])
        validator(closed(entry["resultSchema"])).validate(entry["exampleResult"])


def test_detect_face_example_has_105_landmarks_per_face_inside_the_image() -> None:
    result = next(entry for entry in entries() if entry["action"] == "DetectFace")["exampleResult"]
    faces = result["FaceCount"]
    assert result["LandmarkCount"] == 105
    assert len(result["Landmarks"]) == faces * 105 * 2
    assert len(result["FaceRectangles"]) == faces * 4
    assert len(result["PoseList"]) == faces * 3
    assert len(result["Pupils"]) == faces * 6
    rectangles = result["FaceRectangles"]
    for face in range(faces):
        left, top, width, height = rectangles[face * 4 : face * 4 + 4]
        assert left >= 0 and top >= 0
        assert left + width <= 1024 and top + height <= 768


def test_input_schemas_follow_the_contract_rules() -> None:
    for entry in entries():
        schema = entry["inputSchema"]
        assert schema["type"] == "object" and schema["additionalProperties"] is False, entry["id"]
        for path, prop in walk_properties(schema):
            assert prop.get("description"), f"{entry['id']}: {path} has no description"
            name = path.rsplit(".", 1)[-1]
            if is_url_field(name):
                assert prop["format"] == "uri" and prop["pattern"] == "^https?://", path
                assert prop["description"].startswith("Public http or https"), path
            if prop["type"] == "array" and prop["items"]["type"] == "object":
                assert prop["minItems"] >= 1 and prop["items"]["additionalProperties"] is False, path


def walk_properties(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        found.append((path, prop))
        if prop.get("type") == "array" and prop["items"].get("type") == "object":
            found.extend(walk_properties(prop["items"], f"{path}."))
    return found


def test_alibaba_needs_one_of_several_fields_where_it_does() -> None:
    by_action = {entry["action"]: entry for entry in entries()}
    compare = by_action["CompareFace"]["inputSchema"]
    validate = validator(compare)
    assert not validate.is_valid({"ImageURLA": "https://example.com/a.jpg"})
    assert validate.is_valid({"ImageURLA": "https://example.com/a.jpg", "ImageDataB": "aGVsbG8="})
    tasks = validator(by_action["DetectLivingFace"]["inputSchema"])
    assert not tasks.is_valid({"Tasks": [{}]})
    assert not tasks.is_valid({"Tasks": []})
    assert tasks.is_valid({"Tasks": [{"ImageData": "aGVsbG8="}]})
    liveness = validator(by_action["FaceLivenessV2"]["inputSchema"])
    base = {"ProductCode": "FACE_LIVENESS_MIN_PRO", "MerchantBizId": "b1", "MerchantUserId": "u1"}
    assert not liveness.is_valid(base)
    assert liveness.is_valid({**base, "FacePictureBase64": "aGVsbG8="})


def test_required_fields_match_the_reference_listing() -> None:
    if not REFERENCE_ACTIONS.exists():
        pytest.skip(f"{REFERENCE_ACTIONS} not available")
    reference = {action["action"]: action for action in json.loads(REFERENCE_ACTIONS.read_text(encoding="utf-8"))}
    by_action = {entry["action"]: entry for entry in entries()}
    assert set(reference) == {action for action, entry in by_action.items() if entry["product"] == "facebody"}
    for action, expected in reference.items():
        entry = by_action[action]
        required = sorted(field["name"] for field in expected["fields"] if field["required"])
        assert sorted(entry["inputSchema"].get("required", [])) == required, action
        wire = {(field["name"], field["wire_location"]) for field in expected["fields"]}
        assert {(field["name"], field["location"]) for field in entry["fields"]} == wire, action
        assert entry["httpMethod"] == expected["http_method"], action
        assert entry["sdkMethod"] == f"{expected['sdk_method']}_with_options_async", action
        assert entry["requestClass"] == expected["request_class"], action


def test_face_liveness_v2_requires_what_alibaba_documents() -> None:
    entry = next(entry for entry in entries() if entry["action"] == "FaceLivenessV2")
    assert entry["inputSchema"]["required"] == ["MerchantBizId", "MerchantUserId", "ProductCode"]
    locations = {field["name"]: field["location"] for field in entry["fields"]}
    assert locations["FacePictureBase64"] == "body"
    assert locations["ProductCode"] == locations["FacePictureUrl"] == "query"


def test_wire_fields_describe_every_input_property() -> None:
    for entry in entries():
        names = [field["name"] for field in entry["fields"]]
        assert names == list(entry["inputSchema"]["properties"]), entry["id"]
        assert {field["location"] for field in entry["fields"]} <= {"query", "body"}
    by_action = {entry["action"]: entry for entry in entries()}
    assert by_action["QueryFaceImageTemplate"]["httpMethod"] == "GET"
    assert {field["type"] for field in by_action["BatchAddFaces"]["fields"] if field["name"] == "Faces"} == {"json"}
    assert {field["location"] for field in by_action["GenerateHumanAnimeStyle"]["fields"]} == {"query"}


def test_error_examples_follow_the_validator_rules() -> None:
    for entry in entries():
        schema, example = entry["inputSchema"], entry["exampleRequest"]
        required = schema.get("required", [])
        errors = {example_error["error"] for example_error in entry["errorExamples"]}
        for example_error in entry["errorExamples"]:
            assert example_error["statusCode"] == 400
            assert not validator(schema).is_valid(example_error["input"]), entry["id"]
            assert_error_matches_input(example_error, example, required)
        for name in required:
            if is_url_field(name):
                assert f"{name} is required" in errors, entry["id"]
        if any(not is_url_field(name) for name in required):
            assert "required parameters are missing" in errors, entry["id"]
        for name, prop in schema["properties"].items():
            if prop.get("format") == "uri":
                assert f"{name} must be a valid http or https URL" in errors, entry["id"]


def assert_error_matches_input(example_error: dict[str, Any], example: dict[str, Any], required: list[str]) -> None:
    error, given = example_error["error"], example_error["input"]
    missing = [name for name in required if name not in given]
    if error == "required parameters are missing":
        assert missing and not any(is_url_field(name) for name in missing)
    elif error.endswith(" is required"):
        field = error.removesuffix(" is required")
        assert missing == [field] and is_url_field(field)
    else:
        field = error.removesuffix(" must be a valid http or https URL")
        assert is_url_field(field) and not missing
        assert not re.match(r"^https?://", given[field])
        assert {key: value for key, value in given.items() if key != field} == {
            key: value for key, value in example.items() if key != field
        }


def test_related_services_are_specific_existing_tools() -> None:
    ids = {entry["id"] for entry in entries()}
    lists = set()
    for entry in entries():
        related = entry["relatedServices"]
        assert 2 <= len(related) <= 5, entry["id"]
        assert len(set(related)) == len(related) and entry["id"] not in related
        assert set(related) <= ids, entry["id"]
        lists.add(tuple(related))
    assert len(lists) > 40


def test_curated_texts_are_bilingual_and_specific() -> None:
    for entry in entries():
        assert CJK.search(entry["nameZh"]) and CJK.search(entry["descriptionZh"]), entry["id"]
        assert any(CJK.search(keyword) for keyword in entry["keywords"]), entry["id"]
        assert any(keyword.isascii() for keyword in entry["keywords"]), entry["id"]
        assert entry["useCases"] and entry["limitations"] and entry["tags"], entry["id"]
        assert entry["description"] != entry["descriptionForModel"]
    names = [entry["name"] for entry in entries()]
    assert len(set(names)) == len(names)
    comparison = next(entry for entry in entries() if entry["id"] == "face-comparison")
    assert {"compare faces", "face verification", "1:1", "人脸比对", "人脸相似度"} <= set(comparison["keywords"])


def test_state_changing_tools_are_neither_cacheable_nor_idempotent() -> None:
    for entry in entries():
        if entry["action"] in STATE_CHANGING_ACTIONS:
            assert entry["cacheable"] is False and entry["idempotent"] is False, entry["id"]
    assert all(not entry["cacheable"] for entry in entries() if entry["category"] == "face-database")


def test_enumerations_and_limits_use_the_documented_vocabulary() -> None:
    categories = {
        "face-database",
        "face-editing",
        "face-analysis",
        "body-analysis",
        "face-comparison",
        "liveness",
        "face-fusion",
        "real-person-verification",
    }
    for entry in entries():
        assert entry["category"] in categories
        assert entry["complexity"] in {"simple", "moderate", "complex"}
        assert re.fullmatch(r"\d+ms", entry["typicalResponseTime"])
        assert entry["httpMethod"] in {"GET", "POST"}
        assert set(entry["limits"]) <= {"maxBytes", "formats", "minSide", "maxSide"}
        assert entry["inputTypes"][0] == "object" and entry["outputTypes"][:2] == ["object", "string"]
    limits = {entry["action"]: entry["limits"] for entry in entries()}
    assert limits["DetectFace"] == {
        "maxBytes": 30 * 1024 * 1024,
        "formats": ["JPEG", "JPG", "PNG", "BMP"],
        "minSide": 32,
        "maxSide": 8192,
    }
    assert limits["CompareFace"]["maxBytes"] == 5 * 1024 * 1024
    assert limits["BodyPosture"]["maxBytes"] == 3 * 1024 * 1024
