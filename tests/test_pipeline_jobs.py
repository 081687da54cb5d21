"""Jobs: cancel, idempotent retries, result expiry, and ids that reveal nothing."""

from __future__ import annotations

import asyncio

import pytest
from support import Pipeline

from shared import keys
from shared.arq_seam import ARQ_IN_PROGRESS_PREFIX, ARQ_JOB_PREFIX, ARQ_RETRY_PREFIX

IMAGE = {"ImageURL": "https://example.com/jobs.jpg"}


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {"SERVER402_JOB_RETENTION_S": "1"}


@pytest.mark.no_worker
@pytest.mark.parametrize("pipeline_env", [{"SERVER402_JOB_RETENTION_S": "60"}])  # read back after the worker starts
async def test_a_queued_job_is_canceled_at_once_and_never_runs(pipeline: Pipeline) -> None:
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    response = await pipeline.api.delete(f"/api/jobs/{job['jobId']}")
    assert response.status == 200
    canceled = await response.json()
    assert canceled["status"] == "canceled" and canceled["error"]["code"] == "canceled"
    pipeline.start_worker()
    _, other, _ = await pipeline.call("face-detection", {"ImageURL": "https://example.com/other.jpg"})
    assert other["data"]["Action"] == "DetectFace"  # the worker ran, and skipped the canceled job
    _, final = await pipeline.job(job["jobId"])
    assert final["status"] == "canceled"
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 1


async def test_a_running_job_stops_before_its_next_upstream_call(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", failNext=1, latencyMs={"fixed": 400})
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    for _ in range(200):
        if (await pipeline.job(job["jobId"]))[1]["status"] == "running":
            break
        await asyncio.sleep(0.01)
    response = await pipeline.api.delete(f"/api/jobs/{job['jobId']}")
    assert response.status == 202
    _, final = await pipeline.job(job["jobId"], wait=10)
    assert final["status"] == "canceled"
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_an_ended_job_leaves_nothing_of_arqs_behind(pipeline: Pipeline) -> None:
    """The script that ends a job deletes arq's keys for it, and the worker skips arq's own deletion: nothing may be
    left on the queue or in Redis, whichever way the job ended (and after a retry)."""
    await pipeline.sandbox.put_fault(action="DetectFace", failNext=1)  # the first attempt fails, a retry succeeds
    bodies = [IMAGE, IMAGE, {"ImageURL": pipeline.sandbox.image("no-such-image.jpg")}]
    jobs = [(await pipeline.call("face-detection", body, Prefer="respond-async"))[1]["jobId"] for body in bodies]
    finals = [(await pipeline.job(job_id, wait=10))[1] for job_id in jobs]
    assert sorted(final["status"] for final in finals) == ["failed", "succeeded", "succeeded"]
    assert max(final["attempts"] for final in finals) == 2
    for job_id in jobs:
        assert await pipeline.redis.zscore(keys.QUEUE_NAME, job_id) is None
        prefixes = (ARQ_JOB_PREFIX, ARQ_RETRY_PREFIX, ARQ_IN_PROGRESS_PREFIX)
        assert await pipeline.redis.exists(*(prefix + job_id for prefix in prefixes)) == 0


async def test_canceling_a_finished_job_is_409(pipeline: Pipeline) -> None:
    status, _, _ = await pipeline.call("face-detection", IMAGE)
    assert status == 200
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    await pipeline.job(job["jobId"], wait=10)
    response = await pipeline.api.delete(f"/api/jobs/{job['jobId']}")
    assert response.status == 409
    assert (await response.json())["code"] == "conflict"


async def test_the_same_idempotency_key_and_body_give_the_same_job_and_one_upstream_call(pipeline: Pipeline) -> None:
    answers = await asyncio.gather(
        *(pipeline.call("face-detection", IMAGE, **{"Idempotency-Key": "order-7", "Prefer": "respond-async"})
          for _ in range(5))
    )  # fmt: skip
    job_ids = {job["jobId"] for _, job, _ in answers}
    assert len(job_ids) == 1
    status, blocking, _ = await pipeline.call("face-detection", IMAGE, **{"Idempotency-Key": "order-7"})
    assert status == 200 and blocking["data"]["Action"] == "DetectFace"
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_the_same_idempotency_key_with_another_body_is_422(pipeline: Pipeline) -> None:
    await pipeline.call("face-detection", IMAGE, **{"Idempotency-Key": "order-8"})
    status, body, _ = await pipeline.call(
        "face-detection", {"ImageURL": "https://example.com/different.jpg"}, **{"Idempotency-Key": "order-8"}
    )
    assert status == 422
    assert body["code"] == "idempotency_key_reused"
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_a_finished_jobs_result_expires_then_410(pipeline: Pipeline) -> None:
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    _, final = await pipeline.job(job["jobId"], wait=10)
    assert final["status"] == "succeeded"
    for _ in range(300):  # retention is 1 s here; Redis expires the record
        if not await pipeline.redis.exists(f"s402:job:{job['jobId']}"):
            break
        await asyncio.sleep(0.02)
    status, body = await pipeline.job(job["jobId"])
    assert status == 410
    assert body["code"] == "gone"


@pytest.mark.parametrize("job_id", ["job_" + "a" * 36, "nope", "job_" + "!" * 36, "../../etc/passwd"])
async def test_unknown_or_malformed_job_ids_are_404(pipeline: Pipeline, job_id: str) -> None:
    status, body = await pipeline.job(job_id)
    assert status in (404, 410)
    assert body["code"] in ("job_not_found", "gone", "not_found")


async def test_a_bad_wait_parameter_is_400(pipeline: Pipeline) -> None:
    _, job, _ = await pipeline.call("face-detection", IMAGE, Prefer="respond-async")
    response = await pipeline.api.get(f"/api/jobs/{job['jobId']}", params={"wait": "soon"})
    assert response.status == 400
