"""`GET /metrics`: Prometheus text format. This API process's own metrics, every worker's (added up in Redis),
and gauges read at scrape time: the queue (ready and deferred jobs), jobs running, each service's health."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from api import appkeys
from shared.keys import BATCH_QUEUE_NAME, QUEUE_NAME
from shared.liveness import read_running_jobs
from shared.metrics import Snapshot, WorkerMetrics

routes = web.RouteTableDef()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    redis = request.app[appkeys.REDIS]
    families = [*await WorkerMetrics(redis).read(), *await _queue_gauges(request), await _health_gauge(request)]
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(Snapshot(families))
    body = generate_latest(request.app[appkeys.METRICS].registry) + generate_latest(scraped)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


HEALTH_STATES = ("healthy", "degraded", "unhealthy", "unknown")


async def _health_gauge(request: web.Request) -> Metric:
    """One-hot: 1 for each service's current health status (from the health worker's last probe)."""
    catalog = request.app[appkeys.CATALOG]
    figures = await request.app[appkeys.QUALITY].snapshot([service.id for service in catalog])
    gauge = GaugeMetricFamily(
        "server402_service_health", "Each service's health from the last probe: 1 for its status, 0 otherwise.",
        labels=["service", "status"],
    )  # fmt: skip
    for service in catalog:
        current = figures[service.id].health_status if service.id in figures else "unknown"
        for state in HEALTH_STATES:
            gauge.add_metric([service.id, state], 1.0 if current == state else 0.0)
    return gauge


async def _queue_gauges(request: web.Request) -> list[Metric]:
    redis = request.app[appkeys.REDIS]
    now_ms = int(time.time() * 1000)
    pipe = redis.pipeline(transaction=False)
    for name in (QUEUE_NAME, BATCH_QUEUE_NAME):  # single calls' and the batch lane's
        pipe.zcount(name, "-inf", now_ms)
        pipe.zcount(name, f"({now_ms}", "+inf")
    due, deferred, batch_due, batch_deferred = await pipe.execute()
    running = await read_running_jobs(redis)
    due, deferred = int(due) + int(batch_due), int(deferred) + int(batch_deferred)
    queue = GaugeMetricFamily(
        "server402_queue_jobs", "Jobs waiting on the queue: ready to run now, or deferred (a retry's backoff).",
        labels=["state"],
    )  # fmt: skip
    # running jobs stay on arq's queue, their places at the end of their leases (workers/queue.py): after now
    queue.add_metric(["ready"], int(due))
    queue.add_metric(["deferred"], max(0, int(deferred) - int(running)))
    in_flight = GaugeMetricFamily(
        "server402_jobs_running",
        "Jobs the live workers are running (each writes its count within a second of a change).",
        value=int(running),
    )
    return [queue, in_flight]
