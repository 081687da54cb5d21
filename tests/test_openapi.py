"""/openapi.json is valid OpenAPI 3.1 with one operation per tool and path."""

from __future__ import annotations

from typing import Any

import jsonschema
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from shared.catalog import Catalog


async def _document(api: TestClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def test_document_is_valid_openapi_3_1(api: TestClient) -> None:
    document = await _document(api)
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_tool_has_a_canonical_and_a_deprecated_legacy_operation(api: TestClient, catalog: Catalog) -> None:
    paths = (await _document(api))["paths"]
    operation_ids = [op["operationId"] for path in paths.values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
    for service in catalog:
        canonical = paths[service.endpoint]["post"]
        legacy = paths[service.legacy_endpoint]["post"]
        assert canonical["requestBody"]["content"]["application/json"]["schema"] == service.input_schema
        assert legacy["requestBody"] == canonical["requestBody"]
        assert legacy["deprecated"] is True and "deprecated" not in canonical
        assert {"200", "400", "402"} <= canonical["responses"].keys()


async def test_documented_service_schema_accepts_the_real_answer(api: TestClient) -> None:
    document = await _document(api)
    schema = {**document["paths"]["/api/services/{serviceId}"]["get"]["responses"]["200"]["content"]
              ["application/json"]["schema"], "components": document["components"]}  # fmt: skip
    real = await (await api.get("/api/services/face-detection")).json()
    jsonschema.validate(real, schema)


async def test_example_responses_match_the_documented_output_schema(catalog: Catalog) -> None:
    for service in catalog:
        jsonschema.validate(service.example_response, service.output_schema)


async def test_documented_payment_schema_accepts_the_real_402_offer(api: TestClient) -> None:
    document = await _document(api)
    assert {"/api/payments", "/api/payments/{paymentId}", "/api/jobs/{jobId}"} <= document["paths"].keys()
    schema = {**document["paths"]["/api/payments/{paymentId}"]["get"]["responses"]["200"]["content"]
              ["application/json"]["schema"], "components": document["components"]}  # fmt: skip
    offer = await (await api.post("/api/payments", json={"serviceId": "face-comparison"})).json()
    jsonschema.validate(offer["payment"], schema)
    real = await (await api.get(f"/api/payments/{offer['payment']['paymentId']}")).json()
    jsonschema.validate(real, schema)
    assert real["status"] == "pending" and real["amountCents"] == offer["payment"]["amountCents"]
