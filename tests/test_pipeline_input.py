"""Bad input gets a clear error with the seed's texts and changes nothing: no job, no upstream call."""

from __future__ import annotations

import io
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import Pipeline, build_catalog

from api.app import create_app


async def _nothing_happened(pipeline: Pipeline) -> None:
    assert [key async for key in pipeline.redis.scan_iter("s402:job:*")] == []
    queued = await pipeline.redis.zrange("s402:queue", 0, -1)
    assert [job for job in queued if job.startswith(b"job_")] == []  # (the worker's cron jobs may be there)
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0


@pytest.mark.parametrize(
    ("tool", "body", "message"),
    [
        ("face-detection", {}, "ImageURL is required"),
        ("face-detection", {"ImageURL": "not-a-url"}, "ImageURL must be a valid http or https URL"),
        ("face-detection", {"ImageURL": "ftp://example.com/a.jpg"}, "ImageURL must be a valid http or https URL"),
        ("face-detection", {"ImageURL": "http://"}, "ImageURL must be a valid http or https URL"),
        ("face-detection", {"ImageURL": "https://exa mple.com/a.jpg"}, "ImageURL must be a valid http or https URL"),
        ("face-database-create", {}, "required parameters are missing"),
        ("face-liveness-detection", {}, "required parameters are missing"),
        ("face-comparison", {"ImageURLB": "https://example.com/b.jpg"}, "one of ImageURLA or ImageDataA is required"),
        ("face-detection", {"ImageURL": "https://example.com/a.jpg", "MaxFaceNumber": "five"},
         "MaxFaceNumber must be an integer"),
        ("face-detection", {"ImageURL": "https://example.com/a.jpg", "Landmark": "yes"}, "Landmark must be a boolean"),
        ("face-detection", {"ImageURL": "https://example.com/a.jpg", "Colour": 1}, "unknown parameter Colour"),
        ("face-liveness-detection", {"Tasks": []}, "Tasks must have at least 1 item(s)"),
        ("face-liveness-detection", {"Tasks": [{"ImageURL": "nope"}]},
         "Tasks[0].ImageURL must be a valid http or https URL"),
    ],
)  # fmt: skip
async def test_invalid_input_is_400_with_the_seeds_text(
    pipeline: Pipeline, tool: str, body: dict[str, object], message: str
) -> None:
    status, answer, headers = await pipeline.call(tool, body)
    assert status == 400
    assert answer["error"] == message
    assert answer["code"] == "validation_failed"
    assert answer["requestId"] == headers["X-Request-ID"]
    assert any(detail["message"] == message for detail in answer["details"])
    await _nothing_happened(pipeline)


async def test_every_problem_is_listed_in_details(pipeline: Pipeline) -> None:
    status, answer, _ = await pipeline.call("face-comparison", {"QualityScoreThreshold": "high", "Extra": 1})
    assert status == 400
    fields = {detail["field"] for detail in answer["details"]}
    assert {"QualityScoreThreshold", "Extra"} <= fields


async def test_every_services_error_examples_are_what_the_api_answers(pipeline: Pipeline) -> None:
    for service in pipeline.catalog:
        for example in service.error_examples:
            status, answer, _ = await pipeline.call(service.id, example.input)
            assert (status, answer["error"]) == (example.status_code, example.error), service.id
    await _nothing_happened(pipeline)


async def test_a_tasks_array_sent_as_a_json_string_is_accepted(pipeline: Pipeline) -> None:
    tasks = json.dumps([{"ImageURL": "https://example.com/face.jpg"}])
    status, answer, _ = await pipeline.call("face-liveness-detection", {"Tasks": tasks})
    assert status == 200, answer
    assert answer["data"]["Result"]["Elements"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "request body must be valid JSON"),
        (b'{"ImageURL": "https://example.com/a.jpg",}', "request body must be valid JSON"),
        (b"[1, 2]", "request body must be a JSON object of the tool's parameters"),
        (b'"ImageURL"', "request body must be a JSON object of the tool's parameters"),
        (b"\xff\xfe", "request body must be valid JSON"),
    ],
)
async def test_malformed_json_is_400(pipeline: Pipeline, raw: bytes, message: str) -> None:
    status, answer, _ = await pipeline.call("face-detection", raw)
    assert status == 400
    assert answer == {"error": message, "code": "invalid_json", "requestId": answer["requestId"]}
    await _nothing_happened(pipeline)


async def test_an_oversize_body_is_413(pipeline: Pipeline) -> None:
    body = b'{"ImageURL": "https://example.com/a.jpg", "ImageData": "' + b"A" * pipeline.settings.server.max_body_bytes
    response = await pipeline.api.post(
        "/api/tools/face-detection", data=io.BytesIO(body + b'"}'), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["code"] == "payload_too_large"
    await _nothing_happened(pipeline)


async def test_a_non_json_content_type_is_415(pipeline: Pipeline) -> None:
    response = await pipeline.api.post(
        "/api/tools/face-detection", data="ImageURL=https://example.com/a.jpg",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status == 415
    assert (await response.json())["code"] == "unsupported_media_type"
    await _nothing_happened(pipeline)


async def test_a_priced_tool_answers_402_with_the_seeds_payment_body(pipeline: Pipeline) -> None:
    """Until payments land, only tools the operator prices at 0 run."""
    priced = build_catalog({"defaults": {"amountCents": 0}, "services": {"face-detection": {"amountCents": 20}}})
    async with TestClient(TestServer(create_app(pipeline.settings, priced))) as api:
        response = await api.post("/api/tools/face-detection", json={"ImageURL": "https://example.com/a.jpg"})
        assert response.status == 402
        assert response.headers["X-Payment-Required"] == "true"
        body = await response.json()
    assert body["error"] == "payment required"
    payment = body["payment"]
    assert payment["serviceId"] == "face-detection" and payment["amountCents"] == 20
    assert payment["internalServiceId"] == "aliyun-facebody-detect-face"
    assert payment["status"] == "pending" and payment["maxCalls"] == 1
    await _nothing_happened(pipeline)
