"""The health worker (`python -m workers.health`): probes every service's upstream action without spending money.

What a probe sends, the status each answer gives (`probe_status`), and how runs are scheduled, spread and kept
within the upstream's rate limit: docs/architecture.md, "Quality and health".
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

import structlog
from arq import cron
from arq.connections import RedisSettings
from redis.asyncio import Redis

from shared.arq_seam import arq_deserialize, arq_serialize
from shared.catalog import Catalog
from shared.config import Settings
from shared.keys import PREFIX, load_functions
from shared.liveness import Heartbeat
from shared.models import ToolSpec
from shared.quality import DEGRADED, HEALTHY, UNHEALTHY, HealthStatus, QualityStore
from workers.ratelimit import RateLimiter, SlotTooFar
from workers.supervisor import run_worker
from workers.upstream import Upstream, UpstreamError

HEALTH_QUEUE = f"{PREFIX}:health"
DEFAULT_SPREAD_S = 15.0
DEGRADED_MS = 2000.0
PROBE_SLOT_WAIT_S = 2.0
PROBE_TIMEOUT_S = 5.0
POLL_DELAY_S = 0.5

# Actions whose parameters are all optional: an empty request would be a real (maybe billed) call.
PROBE_PARAMS: dict[str, dict[str, Any]] = {
    "ListFaceDbs": {"Limit": -1},
    "QueryFaceImageTemplate": {"PageNo": -1},
    "RecognizePublicFace": {"Task": [{"ImageURL": "probe:not-a-url"}]},
}

log = structlog.get_logger("workers.health")


class HealthContext(TypedDict):
    redis: Redis
    settings: Settings
    catalog: Catalog
    upstream: Upstream
    limiter: RateLimiter
    quality: QualityStore
    spread_s: float


def probe_params(spec: ToolSpec) -> dict[str, Any]:
    return dict(PROBE_PARAMS.get(spec.action, {}))


def probe_status(error: UpstreamError | None, latency_ms: float) -> HealthStatus:
    """The status table of docs/architecture.md, "Quality and health"."""
    if error is not None:
        if error.kind == "throttled":
            return DEGRADED
        if error.kind != "input":  # unavailable, server, operator
            return UNHEALTHY
    return DEGRADED if latency_ms > DEGRADED_MS else HEALTHY


async def run_probes(ctx: HealthContext) -> dict[str, int]:
    """One probe of every service, spread over `spread_s`. Returns how many ended in each status (and skipped)."""
    specs = [ctx["catalog"].specs[service.id] for service in ctx["catalog"]]
    step_s = ctx["spread_s"] / len(specs) if specs else 0.0
    statuses = await asyncio.gather(*(_probe_after(ctx, spec, index * step_s) for index, spec in enumerate(specs)))
    counts: dict[str, int] = dict(Counter(status or "skipped" for status in statuses))
    log.info("probes done", **counts)
    return counts


async def _probe_after(ctx: HealthContext, spec: ToolSpec, delay_s: float) -> HealthStatus | None:
    await asyncio.sleep(delay_s)
    return await probe(ctx, spec)


async def probe(ctx: HealthContext, spec: ToolSpec) -> HealthStatus | None:
    """Probe one service and record the result; None when it was skipped (no rate-limit slot in time)."""
    qps = ctx["catalog"].terms.for_service(spec.id).qps
    try:
        await ctx["limiter"].acquire(spec.action, qps, max_wait_s=PROBE_SLOT_WAIT_S)
    except SlotTooFar:
        log.info("probe skipped: the action's rate limit is fully booked", service_id=spec.id)
        return None
    checked_at = datetime.now(UTC)
    started = time.perf_counter()
    error: UpstreamError | None = None
    try:
        await ctx["upstream"].call(spec, probe_params(spec), timeout_s=PROBE_TIMEOUT_S)
        log.warning("probe accepted by the upstream: that call may have been billed", service_id=spec.id)
    except UpstreamError as exc:
        error = exc
    latency_ms = (time.perf_counter() - started) * 1000
    status = probe_status(error, latency_ms)
    if status != HEALTHY:
        log.info("probe", service_id=spec.id, status=status, code=error.code if error else None)
    await ctx["quality"].record_probe(spec.id, status, latency_ms, checked_at)
    return status


def health_context(redis: Redis, settings: Settings, catalog: Catalog, *, spread_s: float) -> HealthContext:
    """What `run_probes` needs (the worker's startup builds it; tests call `run_probes` with it directly)."""
    return HealthContext(
        redis=redis,
        settings=settings,
        catalog=catalog,
        upstream=Upstream(settings.upstream),
        limiter=RateLimiter(redis, str(settings.upstream.access_key_id), margin=settings.upstream.ratelimit_margin),
        quality=QualityStore(redis),
        spread_s=spread_s,
    )


def cron_schedule(interval_s: float) -> dict[str, set[int]]:
    """arq cron fields for "every interval_s", on the clock: under a minute, the seconds of each minute that are
    multiples of it (whole seconds); from a minute on, the minutes of each hour that are multiples of it (whole
    minutes, at most hourly), at second 0."""
    seconds = max(1, round(interval_s))
    if seconds < 60:
        return {"second": set(range(0, 60, seconds))}
    minutes = min(60, round(seconds / 60))
    return {"minute": set(range(0, 60, minutes)), "second": {0}}


def health_worker_options(
    settings: Settings,
    catalog: Catalog | None = None,
    *,
    interval_s: float | None = None,
    spread_s: float | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker`; tests inject a short interval and spread."""
    catalog_ = catalog if catalog is not None else Catalog.load(settings.operator_file)
    interval = interval_s if interval_s is not None else settings.jobs.health_interval_s
    spread = spread_s if spread_s is not None else min(DEFAULT_SPREAD_S, interval / 2)

    async def startup(ctx: dict[str, Any]) -> None:
        redis: Redis = ctx["redis"]
        await load_functions(redis)  # a server without functions (Redis < 7) stops the worker here
        ctx.update(health_context(redis, settings, catalog_, spread_s=spread))
        ctx["heartbeat"] = Heartbeat(redis, "health")
        ctx["heartbeat"].start(tied_to=asyncio.current_task())  # arq's main task: stopping the worker stops it
        log.info("health worker ready", interval_s=interval, spread_s=spread, services=len(catalog_))

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "upstream" in ctx:
            await ctx["upstream"].close()  # its kept connections
        if "heartbeat" in ctx:
            await ctx["heartbeat"].stop()

    timeout_s = spread + PROBE_SLOT_WAIT_S + settings.upstream.connect_timeout_s + PROBE_TIMEOUT_S + 5
    return {
        "functions": [],
        "cron_jobs": [
            cron(cast(Any, run_probes), run_at_startup=True, timeout=timeout_s, **cast(Any, cron_schedule(interval)))
        ],
        "queue_name": HEALTH_QUEUE,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "job_serializer": arq_serialize,
        "job_deserializer": arq_deserialize,
        "max_jobs": 2,
        "poll_delay": POLL_DELAY_S,
        "keep_result": 0,
        "handle_signals": True,
    }


def main() -> int:
    return run_worker("health worker", health_worker_options)


if __name__ == "__main__":
    raise SystemExit(main())
