"""A tool call end to end: API -> Redis -> arq worker -> real SDK -> sandbox over HTTP -> result back."""

from __future__ import annotations

from support import Pipeline, redis_config


async def test_blocking_call_returns_the_seed_envelope(pipeline: Pipeline) -> None:
    image = pipeline.sandbox.image("face.jpg")
    status, body, _ = await pipeline.call("face-detection", {"ImageURL": image})
    assert status == 200, body
    assert body["code"] == "200" and body["message"] == "success" and body["content"] == ""
    assert body["data"]["Action"] == "DetectFace"
    assert body["data"]["Result"]["FaceCount"] >= 1
    assert body["requestId"]


async def test_a_worker_starts_the_jobs_of_a_service_it_ran_as_it_claims_them(pipeline: Pipeline) -> None:
    """CLAIM starts a job of a service the worker's claims named before (workers/tasks.py ClaimStarts): only the
    first of three calls of one service is started by START_JOB (the suite's Redis logs every command meanwhile)."""
    image, redis = pipeline.sandbox.image("face.jpg"), pipeline.redis
    async with redis_config(redis, slowlog_log_slower_than=0, slowlog_max_len=4096):
        await redis.slowlog_reset()
        for _ in range(3):
            status, body, _ = await pipeline.call("face-detection", {"ImageURL": image})
            assert status == 200, body
        logged = [entry["command"] for entry in await redis.slowlog_get(4096)]

    def fcalls(name: bytes) -> list[bytes]:
        return [c for c in logged if c.startswith(b"FCALL " + name + b"_")]  # (the library's version follows)

    assert len(fcalls(b"claim_jobs")) >= 3
    assert len(fcalls(b"start_job")) == 1
