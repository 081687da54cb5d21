"""One owner of retries: 5xx, throttling, timeouts and garbage are retried within the deadline; 4xx never are."""

from __future__ import annotations

import asyncio

import pytest
from support import Pipeline

IMAGE = {"ImageURL": "https://example.com/retry.jpg"}


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {"SERVER402_JOB_DEADLINE_S": "4", "SERVER402_UPSTREAM_READ_TIMEOUT_S": "0.5"}


async def _detect_face_stats(pipeline: Pipeline) -> dict[str, int]:
    stats: dict[str, int] = (await pipeline.sandbox.stats())["actions"]["DetectFace"]
    return stats


async def test_injected_5xx_are_retried_until_the_call_succeeds(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", failNext=2)
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    _, final = await pipeline.job(job["jobId"], wait=10)
    assert final["status"] == "succeeded"
    assert final["attempts"] == 3
    stats = await _detect_face_stats(pipeline)
    assert stats["calls"] == 3 and stats["ok"] == 1


async def test_upstream_throttling_is_retried_with_backoff(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", qps=1)
    answers = await asyncio.gather(
        *(pipeline.call("face-detection", {"ImageURL": f"https://example.com/{n}.jpg"}) for n in range(3))
    )
    assert [status for status, _, _ in answers] == [200, 200, 200]
    stats = await _detect_face_stats(pipeline)
    assert stats["ok"] == 3
    assert stats["throttled"] >= 1
    assert stats["calls"] == stats["ok"] + stats["throttled"]


async def test_a_4xx_fails_at_once_with_the_upstream_code_and_is_not_retried(pipeline: Pipeline) -> None:
    missing = pipeline.sandbox.image("no-such-image.jpg")
    status, body, _ = await pipeline.call("face-detection", {"ImageURL": missing})
    assert status == 422
    assert body["code"] == "InvalidImage.Download"
    assert "download" in body["error"].lower()
    assert body["job"]["status"] == "failed" and body["job"]["attempts"] == 1
    assert body["job"]["error"]["retryable"] is False
    assert body["job"]["error"]["upstreamRequestId"]
    assert (await _detect_face_stats(pipeline))["calls"] == 1


async def test_a_persistent_5xx_fails_after_bounded_retries_with_a_clear_error(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", error5xxRate=1.0)
    status, body, _ = await pipeline.call("face-detection", IMAGE)
    assert status == 502, body
    assert body["code"] == "InternalError"
    assert "gave up after" in body["error"]
    attempts = body["job"]["attempts"]
    assert attempts > 1
    assert (await _detect_face_stats(pipeline))["calls"] == attempts


@pytest.mark.parametrize("fault", ["hangRate", "nonJsonRate"])
async def test_hangs_and_garbage_are_retried_then_reported_as_unavailable(pipeline: Pipeline, fault: str) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", **{fault: 1.0})
    status, body, _ = await pipeline.call("face-detection", IMAGE)
    assert status == 504
    assert body["code"] == "UpstreamUnavailable"
    assert body["job"]["attempts"] > 1
    assert "Traceback" not in body["error"]


async def test_a_job_not_started_before_its_deadline_expires(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    await pipeline.redis.hset(f"s402:job:{job['jobId']}", "deadline", 0)  # as if it sat in the queue too long
    pipeline.start_worker()
    _, final = await pipeline.job(job["jobId"], wait=10)
    assert final["status"] == "expired"
    assert final["error"]["code"] == "job_expired"
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0
