"""Every tool end to end, and the three ways of getting an answer: blocking wait, 202 + polling, long poll."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import Pipeline

STATEFUL_ORDER = [
    "face-database-create",
    "face-database-create-entity",
    "face-database-add-face",
    "face-database-batch-add-faces",
    "face-database-get-entity",
    "face-database-list-entities",
    "face-database-update-entity",
    "face-database-search",
    "face-database-list",
    "face-database-delete-face",
    "face-database-delete-entity",
    "face-database-delete",
    "face-template-create",
    "face-fusion",
    "face-template-query",
    "face-template-delete",
    "real-person-verification-token",
    "real-person-verification-result",
]


def _with_ids(example: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    """The example request, with ids the sandbox handed out earlier (faces, templates, tokens) put in."""
    return {key: ids.get(key, value) for key, value in example.items()}


def _collect_ids(result: dict[str, Any], ids: dict[str, str]) -> None:
    for key in ("FaceId", "TemplateId", "VerificationToken"):
        if isinstance(result.get(key), str):
            ids[key] = result[key]
    for face in result.get("InsertedFaces") or []:
        ids.setdefault("FaceId", face.get("FaceId"))


async def test_every_tools_example_request_succeeds(pipeline: Pipeline) -> None:
    services = {service.id: service for service in pipeline.catalog}
    stateless = [sid for sid in services if sid not in STATEFUL_ORDER]
    answers = await asyncio.gather(*(pipeline.call(sid, services[sid].example_request) for sid in stateless))
    for service_id, (status, body, _) in zip(stateless, answers, strict=True):
        assert status == 200, (service_id, body)
        assert body["data"]["Action"] == services[service_id].upstream.action
    ids: dict[str, str] = {}
    for service_id in STATEFUL_ORDER:
        status, body, _ = await pipeline.call(service_id, _with_ids(services[service_id].example_request, ids))
        assert status == 200, (service_id, body)
        _collect_ids(body["data"]["Result"], ids)
    stats = await pipeline.sandbox.stats()
    assert stats["totals"]["calls"] == len(services)


async def test_the_same_input_gives_the_same_result(pipeline: Pipeline) -> None:
    body = {"ImageURL": pipeline.sandbox.image("face.png")}
    first = await pipeline.call("face-detection", body)
    second = await pipeline.call("aliyun-facebody-detect-face", body)
    assert first[0] == second[0] == 200
    assert first[1]["data"] == second[1]["data"]


async def test_respond_async_answers_202_with_the_job_and_its_location(pipeline: Pipeline) -> None:
    status, job, headers = await pipeline.call(
        "face-detection", {"ImageURL": pipeline.sandbox.image("face.jpg")}, Prefer="respond-async"
    )
    assert status == 202
    assert headers["Location"] == f"/api/jobs/{job['jobId']}"
    assert headers["Preference-Applied"] == "respond-async"
    assert job["status"] in ("queued", "running", "succeeded")
    assert job["serviceId"] == "face-detection"
    status, final = await pipeline.job(job["jobId"], wait=10)
    assert status == 200 and final["status"] == "succeeded"
    assert final["result"]["data"]["Action"] == "DetectFace"
    assert final["attempts"] == 1
    assert final["finishedAt"] >= final["startedAt"] >= final["createdAt"]
    assert "expiresAt" in final


async def test_a_wait_that_runs_out_answers_202_and_polling_gets_the_result(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 1500})
    status, job, headers = await pipeline.call(
        "face-detection", {"ImageURL": "https://example.com/a.jpg"}, Prefer="wait=0.2"
    )
    assert status == 202, job
    assert headers["Preference-Applied"] == "wait=0.2"
    assert job["status"] in ("queued", "running")
    status, final = await pipeline.job(job["jobId"], wait=10)
    assert final["status"] == "succeeded"


async def test_long_poll_returns_as_soon_as_the_job_finishes(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 300})
    _, job, _ = await pipeline.call("face-detection", {"ImageURL": "https://example.com/b.jpg"}, Prefer="respond-async")
    status, final = await pipeline.job(job["jobId"], wait=30)
    assert status == 200
    assert final["status"] == "succeeded"


@pytest.mark.no_worker
async def test_a_queued_job_shows_its_place_in_the_queue(pipeline: Pipeline) -> None:
    jobs = []
    for n in range(3):
        _, job, _ = await pipeline.call(
            "face-detection", {"ImageURL": f"https://example.com/{n}.jpg"}, Prefer="respond-async"
        )
        jobs.append(job)
    positions = [(await pipeline.job(job["jobId"]))[1]["queuePosition"] for job in jobs]
    assert positions == [0, 1, 2]
    pipeline.start_worker()
    finals = [(await pipeline.job(job["jobId"], wait=10))[1] for job in jobs]
    assert [final["status"] for final in finals] == ["succeeded"] * 3
    assert all("queuePosition" not in final for final in finals)


async def test_unknown_tool_is_404_before_anything_else(pipeline: Pipeline) -> None:
    status, body, _ = await pipeline.call("face-teleportation", {"ImageURL": "https://example.com/a.jpg"})
    assert status == 404 and body["code"] == "service_not_found"
