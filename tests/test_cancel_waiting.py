"""A job canceled while it waits for its slot of the upstream rate limit never makes its call, and is not counted
as an attempt (workers/ratelimit.py: the booking script, or the check after the wait)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import Pipeline

IMAGE = {"ImageURL": "https://example.com/cancel-waiting.jpg"}


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 0, "qps": 1}}  # the second call waits about a second for its slot


async def test_a_job_canceled_while_waiting_for_its_slot_makes_no_call(pipeline: Pipeline) -> None:
    _, first, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    _, second, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    assert (await pipeline.job(first["jobId"], wait=10))[1]["status"] == "succeeded"
    for _ in range(100):  # running: taken by the worker, waiting for its slot (the first took this second's)
        if (await pipeline.job(second["jobId"]))[1]["status"] == "running":
            break
        await asyncio.sleep(0.01)
    response = await pipeline.api.delete(f"/api/jobs/{second['jobId']}")
    assert response.status == 202  # asked to stop before its upstream call
    _, final = await pipeline.job(second["jobId"], wait=10)
    assert final["status"] == "canceled" and final["error"]["code"] == "canceled"
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1
    await pipeline.flush_quality()
    quality = (await (await pipeline.api.get("/api/services/face-detection")).json())["quality"]
    assert quality["callCount"] == 2 and quality["executionCount"] == 1
