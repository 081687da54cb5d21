"""The health worker probes every service for free, sees injected faults, and workers' heartbeats drive /readyz."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.worker import Worker
from support import PIPELINE_KEY_ID, Pipeline

from shared.keys import rate_limit_key
from workers.health import (
    HEALTH_QUEUE,
    HealthContext,
    cron_schedule,
    health_context,
    health_worker_options,
    probe,
    probe_status,
    run_probes,
)
from workers.upstream import UpstreamError

pytestmark = pytest.mark.no_worker  # no invocation worker unless a test starts one

STATUS_SERVICE_KEYS = {
    "id", "name", "category", "healthStatus", "healthCheckedAt", "healthLatencyMs", "successRate", "callCount",
    "executionCount", "successCount", "errorCount", "paymentRequireds", "lastCallAt", "latencyMs", "qualityScore",
    "history",
}  # fmt: skip


@contextlib.asynccontextmanager
async def _context(pipeline: Pipeline, spread_s: float = 0.0) -> AsyncIterator[HealthContext]:
    ctx = health_context(pipeline.redis, pipeline.settings, pipeline.catalog, spread_s=spread_s)
    try:
        yield ctx
    finally:
        await ctx["upstream"].close()  # its kept connections (workers/transport.py)


async def _status(pipeline: Pipeline) -> dict[str, Any]:
    response = await pipeline.api.get("/api/status")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_a_probe_run_finds_every_service_healthy_without_a_billable_call(pipeline: Pipeline) -> None:
    services = len(pipeline.catalog)
    started = time.perf_counter()
    async with _context(pipeline, spread_s=0.2) as ctx:
        counts = await run_probes(ctx)
    assert time.perf_counter() - started >= 0.19  # the probes' starts were spread over 0.2 s
    assert counts == {"healthy": services}
    stats = await pipeline.sandbox.stats()
    assert len(stats["actions"]) == services
    assert all(s["calls"] == s["errors"] == 1 and s["ok"] == 0 for s in stats["actions"].values()), stats
    assert await pipeline.redis.exists(rate_limit_key(PIPELINE_KEY_ID, "DetectFace"))  # through the limiter

    body = await _status(pipeline)
    assert set(body) == {"generatedAt", "workers", "services"}
    assert [row["id"] for row in body["services"]] == [service.id for service in pipeline.catalog]
    for row in body["services"]:
        assert row.keys() == STATUS_SERVICE_KEYS
        assert row["healthStatus"] == "healthy" and row["healthLatencyMs"] is not None
        assert row["callCount"] == row["executionCount"] == 0  # probes are not calls
        assert [entry["status"] for entry in row["history"]] == ["healthy"]
        assert row["history"][0].keys() == {"at", "status", "latencyMs"}
        assert row["history"][0]["at"] == row["healthCheckedAt"]
    assert body["workers"]["invocation"] == {"alive": False, "lastSeenAt": None, "count": 0}


async def test_a_5xx_fault_makes_the_probe_unhealthy_until_it_is_cleared(pipeline: Pipeline) -> None:
    async with _context(pipeline) as ctx:
        await pipeline.sandbox.put_fault(action="DetectFace", error5xxRate=1.0)
        counts = await run_probes(ctx)
        assert counts == {"healthy": len(pipeline.catalog) - 1, "unhealthy": 1}
        quality = (await (await pipeline.api.get("/api/services/face-detection")).json())["quality"]
        assert quality["healthStatus"] == "unhealthy" and quality["qualityScore"] <= 1.0

        await pipeline.sandbox.clear_faults()
        assert await probe(ctx, pipeline.catalog.specs["face-detection"]) == "healthy"
    row = next(row for row in (await _status(pipeline))["services"] if row["id"] == "face-detection")
    assert row["healthStatus"] == "healthy"
    assert [entry["status"] for entry in row["history"]] == ["unhealthy", "healthy"]  # oldest first
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["ok"] == 0


@pytest.mark.parametrize(
    ("error", "latency_ms", "status"),
    [
        (UpstreamError("MissingImageURL", "m", status=400, kind="input"), 50.0, "healthy"),
        (UpstreamError("InvalidParameter", "m", status=400, kind="input"), 2500.0, "degraded"),
        (UpstreamError("Throttling.User", "m", status=400, kind="throttled"), 50.0, "degraded"),
        (UpstreamError("SignatureDoesNotMatch", "m", status=400, kind="operator"), 50.0, "unhealthy"),
        (UpstreamError("InvalidAccessKeyId.NotFound", "m", status=404, kind="operator"), 50.0, "unhealthy"),
        (UpstreamError("InternalError", "m", status=500, kind="server"), 50.0, "unhealthy"),
        (UpstreamError("UpstreamUnavailable", "m", status=None, kind="unavailable"), 5000.0, "unhealthy"),
        (None, 50.0, "healthy"),
    ],
)
def test_probe_answers_map_to_health_statuses(error: UpstreamError | None, latency_ms: float, status: str) -> None:
    assert probe_status(error, latency_ms) == status


def test_the_interval_becomes_a_cron_schedule_on_the_clock() -> None:
    assert cron_schedule(15) == {"second": {0, 15, 30, 45}}
    assert cron_schedule(60) == {"minute": set(range(60)), "second": {0}}
    assert cron_schedule(300) == {"minute": set(range(0, 60, 5)), "second": {0}}


async def test_readyz_needs_a_live_invocation_worker(pipeline: Pipeline) -> None:
    response = await pipeline.api.get("/readyz")
    assert response.status == 503 and response.headers["Retry-After"] == "2"
    details = (await response.json())["details"]
    assert details == {"checks": {"redis": "ok", "workers": {"invocation": 0, "batch": 0, "health": 0}}}

    pipeline.start_worker()  # both lanes (the batch lane's worker is shown, not needed to be ready)
    for _ in range(100):
        response = await pipeline.api.get("/readyz")
        if response.status == 200 and (await response.json())["workers"]["batch"] == 1:
            break
        await asyncio.sleep(0.05)
    assert response.status == 200
    assert await response.json() == {"status": "ready", "redis": "ok",
                                     "workers": {"invocation": 1, "batch": 1, "health": 0}}  # fmt: skip
    workers = (await _status(pipeline))["workers"]
    assert workers["invocation"]["alive"] is True and workers["invocation"]["count"] == 1
    assert workers["invocation"]["lastSeenAt"].endswith("Z")


async def test_a_running_health_worker_probes_at_start_and_beats_its_heartbeat(pipeline: Pipeline) -> None:
    options = health_worker_options(pipeline.settings, pipeline.catalog, interval_s=3600, spread_s=0)
    assert options["queue_name"] == HEALTH_QUEUE
    worker = Worker(**{**options, "handle_signals": False})
    task = asyncio.create_task(worker.async_run())
    try:
        for _ in range(200):
            body = await _status(pipeline)
            if all(row["healthCheckedAt"] for row in body["services"]) and body["workers"]["health"]["alive"]:
                break
            await asyncio.sleep(0.05)
        assert {row["healthStatus"] for row in body["services"]} == {"healthy"}
        assert body["workers"]["health"]["count"] == 1
        for _ in range(100):  # let the probe run finish before stopping the worker
            if worker.jobs_complete:
                break
            await asyncio.sleep(0.02)
        assert worker.jobs_complete == 1
    finally:
        worker.handle_sig(signal.SIGUSR1)
        await asyncio.gather(task, *worker.tasks.values(), return_exceptions=True)
        await options["on_shutdown"](worker.ctx)  # as arq's Worker.close does: the heartbeat, the upstream's session
        await worker.pool.aclose(close_connection_pool=True)
