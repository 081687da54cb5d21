"""/metrics: Prometheus text with the API's own metrics, every worker's (through Redis) and queue gauges."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from support import Pipeline

from scripts.embedded_redis import free_port
from shared.keys import QUEUE_NAME, RUNNING_JOBS
from shared.liveness import Heartbeat, read_running_jobs, workers_key
from shared.metrics import JOBS_FINISHED, KEY_PREFIX, RUNNING_REFRESH_S, UPSTREAM_CALL, WorkerMetrics


async def scrape(pipeline: Pipeline) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = await pipeline.api.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for sample_labels, v in samples if labels.items() <= sample_labels.items())


async def test_metrics_count_requests_upstream_calls_and_jobs_without_unbounded_labels(pipeline: Pipeline) -> None:
    image = {"ImageURL": pipeline.sandbox.image("face.jpg")}
    for _ in range(2):
        status, _, _ = await pipeline.call("face-detection", image)
        assert status == 200
    await pipeline.call("face-detection", {"ImageURL": pipeline.sandbox.image("no-such-image.jpg")})
    assert pipeline.worker is not None  # a worker writes its figures every second; here, at once
    for _ in range(200):  # the answer can come before the worker has let go of the job
        if not pipeline.worker.worker.job_tasks:
            break
        await asyncio.sleep(0.01)
    await pipeline.worker.worker.ctx["metrics"].flush()
    samples = await scrape(pipeline)
    requests = samples["server402_http_request_duration_seconds_count"]
    assert value(requests, route="/api/tools/{tool}", method="POST", status="200") == 2
    assert value(requests, route="/api/tools/{tool}", status="422") == 1
    upstream = samples["server402_upstream_call_duration_seconds_count"]
    assert value(upstream, action="DetectFace", outcome="ok") == 2
    assert value(upstream, action="DetectFace", outcome="client_error") == 1
    finished = samples["server402_jobs_finished_total"]
    assert value(finished, service="face-detection", status="succeeded") == 2
    assert value(samples["server402_jobs_running"]) == 0
    assert value(samples["server402_queue_jobs"], state="ready") == 0
    health = samples["server402_service_health"]
    assert value(health, service="face-detection", status="unknown") == 1  # no probe has run in this test
    assert value(health, status="healthy") == 0 and len(health) == 4 * len(pipeline.catalog.services)
    label_values = {v for series in samples.values() for labels, _ in series for v in labels.values()}
    assert not any(v.startswith(("job_", "pay_", "s402")) for v in label_values)


async def test_worker_metrics_survive_a_redis_outage_and_are_written_once(redis: Redis) -> None:
    """A worker adds up its figures in memory; a flush Redis refuses keeps them for the next one."""
    away = Redis(port=free_port(), socket_connect_timeout=1)
    metrics = WorkerMetrics(away)
    try:
        metrics.observe(UPSTREAM_CALL, ("MetricsOutageTest", "ok"), 0.02)
        metrics.observe(UPSTREAM_CALL, ("MetricsOutageTest", "ok"), 0.2)
        metrics.inc(JOBS_FINISHED, ("metrics-outage-test", "succeeded"), 2)
        with pytest.raises(RedisConnectionError):
            await metrics.flush()
        metrics.redis = redis  # Redis is back
        await metrics.flush()
        await metrics.flush()  # nothing new: nothing added twice
        families = {family.name: family for family in await WorkerMetrics(redis).read()}
        upstream = [s for s in families["server402_upstream_call_duration_seconds"].samples
                    if s.labels.get("action") == "MetricsOutageTest"]  # fmt: skip
        count = next(s.value for s in upstream if s.name.endswith("_count"))
        total = next(s.value for s in upstream if s.name.endswith("_sum"))
        assert count == 2 and total == pytest.approx(0.22)
        finished = families["server402_jobs_finished"].samples
        assert [s.value for s in finished if s.labels.get("service") == "metrics-outage-test"] == [2]
    finally:
        await away.aclose()
        await redis.delete(*(KEY_PREFIX + m.name for m in (UPSTREAM_CALL, JOBS_FINISHED)))


async def test_the_queue_gauges_count_a_running_job_as_running_only(pipeline: Pipeline) -> None:
    """A running job stays on arq's queue, its place moved to the end of its lease: neither ready nor deferred."""
    await pipeline.sandbox.put_fault(action="DetectFace", latencyMs={"fixed": 1500})
    _, job, _ = await pipeline.call("face-detection", {"ImageURL": pipeline.sandbox.image("face.jpg")},
                                    Prefer="respond-async")  # fmt: skip
    for _ in range(200):
        if (await pipeline.job(job["jobId"]))[1]["status"] == "running":
            break
        await asyncio.sleep(0.01)
    assert pipeline.worker is not None
    await pipeline.worker.worker.ctx["metrics"].flush()  # what it writes every second: it holds the job
    samples = await scrape(pipeline)
    # arq queues its cron job (payment expiry, at :00 and :30) about its time: that one may count, nothing else
    crons = [member for member in await pipeline.redis.zrange(QUEUE_NAME, 0, -1) if not member.startswith(b"job_")]
    assert value(samples["server402_jobs_running"]) == 1
    queued = value(samples["server402_queue_jobs"], state="ready") + value(
        samples["server402_queue_jobs"], state="deferred"
    )
    assert queued <= len(crons)
    assert (await pipeline.job(job["jobId"], wait=10))[1]["status"] == "succeeded"


async def test_the_running_gauge_counts_what_live_workers_hold_and_forgets_a_dead_one(redis: Redis) -> None:
    held = {"live": 3, "dead": 5}
    live, dead = (WorkerMetrics(redis, running=lambda n=n: held[n], worker_id=f"w-{n}") for n in ("live", "dead"))
    await redis.delete(RUNNING_JOBS)  # what the pipeline's workers of the tests before left (live for 15 s)
    try:
        for worker_id, kind in (("w-live", "invocation"), ("w-dead", "batch")):
            await Heartbeat(redis, kind, worker_id=worker_id).beat()
        await live.flush()
        await dead.flush()
        assert await read_running_jobs(redis) == 8
        await redis.delete(RUNNING_JOBS)  # as if its TTL ran out while both held the same jobs
        live._running_written_at -= RUNNING_REFRESH_S  # ten seconds on: an unchanged count is written again
        await live.flush()
        assert await read_running_jobs(redis) == 3
        dead._running_written_at -= RUNNING_REFRESH_S
        await dead.flush()
        assert await read_running_jobs(redis) == 8
        now_ms = int(time.time() * 1000)
        await redis.zadd(workers_key("batch"), {"w-dead": now_ms - 60_000})  # its last beat a minute ago: dead
        assert await read_running_jobs(redis) == 3
        held["live"] = 0
        await live.flush()  # a count that changed is written
        assert await read_running_jobs(redis) == 0
        await live.stop()  # a stopping worker takes its count away
        assert not await redis.hexists(RUNNING_JOBS, "w-live")  # type: ignore[misc]
    finally:
        await redis.delete(RUNNING_JOBS, workers_key("invocation"), workers_key("batch"))
