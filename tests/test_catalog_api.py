"""The catalog, search and service endpoints answer in the seed's shape, for every tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from shared.catalog import Catalog

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "003_de1db9ba270b65d8.pretty.json"
SEARCH_ONLY_KEYS = {"matchScore", "matchTerms", "why"}
FIXED_IDS = {
    "body-pose-estimation": "aliyun-facebody-body-posture",
    "face-detection": "aliyun-facebody-detect-face",
    "celebrity-recognition": "aliyun-facebody-detect-celebrity",
    "face-liveness-detection": "aliyun-facebody-detect-living-face",
    "face-database-create": "aliyun-facebody-create-face-db",
    "infrared-face-liveness-detection": "aliyun-facebody-detect-infrared-living-face",
    "face-beauty-retouching": "aliyun-facebody-face-beauty",
    "face-enhancement": "aliyun-facebody-enhance-face",
    "facial-expression-recognition": "aliyun-facebody-recognize-expression",
    "deepfake-detection": "aliyun-facebody-deepfake-face",
    "video-face-liveness-detection": "aliyun-facebody-detect-video-living-face",
    "face-comparison": "aliyun-facebody-compare-face",
}


@pytest.fixture(scope="module")
def seed() -> dict[str, Any]:
    if not SEED.exists():
        pytest.skip("seed documents are not beside this checkout")
    return json.loads(SEED.read_text())


def _keys(obj: dict[str, Any]) -> set[str]:
    return set(obj.keys())


async def test_catalog_lists_every_tool_with_every_seed_field(api: TestClient, seed: dict[str, Any]) -> None:
    response = await api.get("/api/catalog")
    assert response.status == 200
    body = await response.json()
    services = body["services"]
    assert body["total"] == len(services) == 44
    seed_service = seed["services"][0]
    for service in services:
        assert _keys(seed_service) - SEARCH_ONLY_KEYS <= _keys(service), service["id"]
        for nested in ("pricing", "payment", "quality", "discovery", "sla"):
            assert _keys(seed_service[nested]) <= _keys(service[nested]), (service["id"], nested)
        assert service["discovery"]["paymentFlow"] == seed_service["discovery"]["paymentFlow"]
    assert body["payment"] == seed["payment"]


async def test_the_seed_ids_and_legacy_ids_are_kept(api: TestClient) -> None:
    services = {s["id"]: s for s in (await (await api.get("/api/catalog")).json())["services"]}
    for service_id, legacy_id in FIXED_IDS.items():
        service = services[service_id]
        assert service["canonicalId"] == service_id
        assert service["internalServiceId"] == legacy_id
        assert service["endpoint"] == f"/api/tools/{service_id}"
        assert service["legacyEndpoint"] == f"/api/tools/{legacy_id}"
        assert service["discovery"]["toolName"] == service_id.replace("-", "_")


async def test_default_terms_are_the_seeds(api: TestClient, seed: dict[str, Any]) -> None:
    service = await (await api.get("/api/services/body-pose-estimation")).json()
    assert service["pricing"] == seed["services"][0]["pricing"]
    assert service["payment"] == seed["services"][0]["payment"]


@pytest.mark.parametrize("key", ["face-comparison", "aliyun-facebody-compare-face", "face_comparison"])
async def test_a_service_resolves_by_id_legacy_id_and_tool_name(api: TestClient, key: str) -> None:
    response = await api.get(f"/api/services/{key}")
    assert response.status == 200
    body = await response.json()
    assert body["id"] == "face-comparison"
    assert body["upstream"] == {"product": "facebody", "version": "2019-12-30", "action": "CompareFace"}


async def test_an_unknown_service_is_a_json_404(api: TestClient) -> None:
    response = await api.get("/api/services/face-teleportation")
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "service_not_found"
    assert "face-teleportation" in body["error"]


async def test_example_responses_carry_the_actions_real_result(catalog: Catalog) -> None:
    for service in catalog:
        example = service.example_response
        assert example["code"] == "200" and example["message"] == "success"
        assert example["data"]["Action"] == service.upstream.action
        result = example["data"]["Result"]
        has_data = bool(catalog.specs[service.id].result_schema.get("properties"))
        assert isinstance(result, dict) and bool(result) == has_data, service.id


async def test_search_envelope_has_the_seeds_keys(api: TestClient, seed: dict[str, Any]) -> None:
    response = await api.get("/api/catalog/search", params={"q": "body-pose-estimation"})
    assert response.status == 200
    body = await response.json()
    assert list(body) == list(seed)
    assert body["schemaVersion"] == "server402.catalog.search.v1"
    assert body["query"] == "body-pose-estimation"
    assert body["filters"] == {"limit": 10}
    assert body["services"][0]["id"] == "body-pose-estimation"
    assert body["total"] < 10
    for service in body["services"]:
        assert service.keys() >= SEARCH_ONLY_KEYS
        assert service["why"].startswith("Matched ")


async def test_search_finds_chinese_queries_and_filters_by_category(api: TestClient) -> None:
    body = await (await api.get("/api/catalog/search", params={"q": "人脸比对"})).json()
    assert body["services"][0]["id"] == "face-comparison"
    filtered = await (await api.get("/api/catalog/search", params={"q": "", "category": "liveness"})).json()
    assert filtered["total"] >= 3
    assert all(s["category"] == "liveness" or "liveness" in s["tags"] for s in filtered["services"])
    assert filtered["filters"] == {"limit": 10, "category": "liveness"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "x", "limit": "ten"}, "limit must be an integer between 1 and 100"),
        ({"q": "x", "limit": "0"}, "limit must be an integer between 1 and 100"),
        ({"q": "x", "limit": "101"}, "limit must be an integer between 1 and 100"),
        ({"q": "x" * 300}, "q must be at most 256 characters"),
    ],
)
async def test_bad_search_parameters_are_400(api: TestClient, params: dict[str, str], message: str) -> None:
    response = await api.get("/api/catalog/search", params=params)
    assert response.status == 400
    body = await response.json()
    assert body == {"error": message, "code": "bad_request", "requestId": response.headers["X-Request-ID"]}
