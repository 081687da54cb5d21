"""`GET /api/status`: the live state of the gateway, for the status dashboard and for operators.

    {generatedAt,
     workers: {invocation: {alive, lastSeenAt, count}, health: {alive, lastSeenAt, count}},
     services: [{id, name, category, healthStatus, healthCheckedAt, healthLatencyMs, successRate, callCount,
                 executionCount, successCount, errorCount, paymentRequireds, lastCallAt, latencyMs, qualityScore,
                 history: [{at, status, latencyMs}, ...]}]}

Services in catalog order. `history` holds the last 30 probes, oldest first. What each figure counts and the
qualityScore formula: shared/quality.py; workers' heartbeats: shared/liveness.py. Two pipelines, run together.
Without Redis the answer is 503 (there is no live state to show).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from api.appkeys import CATALOG, QUALITY, REDIS
from api.responses import json_response
from shared.clock import utc_iso
from shared.liveness import WorkerLiveness, read_liveness
from shared.models import Camel, Service
from shared.quality import ProbeRecord, ServiceFigures

routes = web.RouteTableDef()


class ServiceStatus(Camel, frozen=True):
    id: str
    name: str
    category: str
    health_status: str
    health_checked_at: str | None
    health_latency_ms: int | None
    success_rate: float | None
    call_count: int
    execution_count: int
    success_count: int
    error_count: int
    payment_requireds: int
    last_call_at: str | None
    latency_ms: int | None
    quality_score: float
    history: tuple[ProbeRecord, ...]


class Status(Camel, frozen=True):
    generated_at: str
    workers: dict[str, WorkerLiveness]
    services: list[ServiceStatus]


@routes.get("/api/status")
async def status(request: web.Request) -> web.Response:
    services = request.app[CATALOG].services
    figures, workers = await asyncio.gather(
        request.app[QUALITY].figures([service.id for service in services]), read_liveness(request.app[REDIS])
    )
    rows = [service_status(service, figures[service.id]) for service in services]
    return json_response(Status(generated_at=utc_iso(), workers=workers, services=rows))


def service_status(service: Service, figures: ServiceFigures) -> ServiceStatus:
    quality = figures.quality
    return ServiceStatus(
        id=service.id,
        name=service.name,
        category=service.category,
        health_status=quality.health_status,
        health_checked_at=quality.health_checked_at,
        health_latency_ms=quality.health_latency_ms,
        success_rate=quality.success_rate,
        call_count=quality.call_count,
        execution_count=quality.execution_count,
        success_count=quality.success_count,
        error_count=quality.error_count,
        payment_requireds=quality.payment_requireds,
        last_call_at=quality.last_call_at,
        latency_ms=figures.latency_ms,
        quality_score=quality.quality_score,
        history=figures.history,
    )
