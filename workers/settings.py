"""arq worker settings for the invocation worker of a lane (workers/lanes.py: single calls, or batch items), built
from `Settings` (clients created in startup, closed in shutdown; nothing at import)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal, cast

import structlog
from arq import cron, func
from arq.connections import RedisSettings
from redis.asyncio import Redis

from shared.arq_seam import RUN_TOOL, arq_deserialize, arq_serialize
from shared.batches import BatchStore
from shared.catalog import Catalog
from shared.config import Settings
from shared.eventloop import loop_name
from shared.jobs import JobStore
from shared.keys import BATCH_QUEUE_NAME, QUEUE_NAME, load_functions
from shared.liveness import Heartbeat
from shared.metrics import WorkerMetrics
from shared.payments import PaymentStore
from shared.quality import QualityStore
from shared.webhooks import DeliveryStore
from workers.queue import CLAIM_STARTS, JOBS_HELD, Leases
from workers.ratelimit import RateLimiter
from workers.tasks import MAX_SLOT_WAIT_S, BatchSlots, ClaimStarts, WorkerContext, expire_payments, run_tool
from workers.tenancy import Namespaces
from workers.upstream import Upstream
from workers.webhooks import WebhookSender

HEALTH_CHECK_INTERVAL_S = 5
Lane = Literal["calls", "batch"]
QUEUE_OF: dict[Lane, str] = {"calls": QUEUE_NAME, "batch": BATCH_QUEUE_NAME}
ARQ_MAX_TRIES = 1000  # a backstop only: the job's deadline bounds retries


def attempt_timeout_s(settings: Settings) -> float:
    """One attempt: the longest slot wait plus one upstream call, plus a little (arq cancels an attempt that runs
    longer; a crashed worker's job runs again once its lease lapses, see workers/queue.py)."""
    return MAX_SLOT_WAIT_S + settings.upstream.connect_timeout_s + settings.upstream.read_timeout_s + 2


def worker_options(settings: Settings, catalog: Catalog | None = None, *, lane: Lane = "calls") -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` taking `lane`'s jobs. The calls lane also delivers webhooks and runs the
    cron; the batch lane runs batch items only."""
    catalog_ = catalog if catalog is not None else Catalog.load(settings.operator_file)
    queue = QUEUE_OF[lane]

    async def startup(ctx: dict[str, Any]) -> None:
        redis: Redis = ctx["redis"]
        await load_functions(redis)  # a server without functions (Redis < 7) stops the worker here
        ctx["settings"] = settings
        ctx["catalog"] = catalog_
        ctx["leases"] = Leases(redis, queue)  # the running attempts' leases on its queue, renewed together
        ctx["leases"].start(tied_to=asyncio.current_task())
        ctx["store"] = JobStore(redis, retention_s=settings.jobs.retention_s)
        ctx["quality"] = QualityStore(redis)  # attempts and outcomes, written every second and at shutdown
        ctx["quality"].start(tied_to=asyncio.current_task())
        ctx["batch_slots"] = BatchSlots(settings.jobs.worker_batch_jobs)
        ctx["batches"] = BatchStore.from_settings(redis, settings)
        # /readyz counts live invocation workers (and shows the batch lane's)
        heartbeat = Heartbeat(redis, "invocation" if lane == "calls" else "batch")
        # flushed every second, and at shutdown, with how many jobs this worker holds (ServerWorker's)
        ctx["metrics"] = WorkerMetrics(redis, running=ctx.get(JOBS_HELD), worker_id=heartbeat.worker_id)
        ctx["metrics"].start(tied_to=asyncio.current_task())
        ctx["upstream"] = Upstream(settings.upstream, ctx["metrics"])
        ctx["limiter"] = RateLimiter(
            redis, str(settings.upstream.access_key_id), ctx["metrics"], margin=settings.upstream.ratelimit_margin
        )
        ctx["payments"] = PaymentStore(redis, settings.payments, settings.x402)
        ctx["namespaces"] = Namespaces(redis)  # face-database namespaces of tenants (workers/tenancy.py)
        if lane == "calls":
            # CLAIM starts the jobs it can (a batch item starts once it has its batch slot)
            ctx[CLAIM_STARTS] = ClaimStarts(cast(WorkerContext, ctx))
            ctx["webhooks"] = WebhookSender(
                settings.webhooks, settings.payments.token_secret, ctx["store"], ctx["batches"], DeliveryStore(redis)
            )
            # signed deliveries of job and batch events (workers/webhooks.py), stopping with arq's main task
            ctx["webhooks"].start(tied_to=asyncio.current_task())
        ctx["heartbeat"] = heartbeat
        ctx["heartbeat"].start(tied_to=asyncio.current_task())  # arq's main task: stopping the worker stops it
        structlog.get_logger("workers").info(
            "worker ready",
            upstream=settings.upstream.mode,
            queue=queue,
            event_loop=loop_name(asyncio.get_running_loop()),
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "upstream" in ctx:
            await ctx["upstream"].close()  # its kept connections (the jobs have ended)
        if "leases" in ctx:
            await ctx["leases"].stop()
        if "quality" in ctx:
            await ctx["quality"].stop()  # (it logs Redis trouble and never raises for it)
        if "heartbeat" in ctx:
            await ctx["heartbeat"].stop()
        if "webhooks" in ctx:
            await ctx["webhooks"].stop()
        if "metrics" in ctx:
            await ctx["metrics"].stop()

    async def on_job_start(ctx: dict[str, Any]) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(job_id=ctx["job_id"])  # a tool job's attempt binds its number

    return {
        "functions": [
            func(cast(Any, run_tool), name=RUN_TOOL, timeout=attempt_timeout_s(settings), max_tries=ARQ_MAX_TRIES),
        ],
        # Every 30 s one worker (arq's cron runs each tick once) expires payments past their time in the ledger.
        "cron_jobs": [cron(cast(Any, expire_payments), second={0, 30}, timeout=60)] if lane == "calls" else [],
        "queue_name": queue,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "on_job_start": on_job_start,
        "job_serializer": arq_serialize,
        "job_deserializer": arq_deserialize,
        # the batch lane takes no more items than it runs at once (BatchSlots never makes one step back)
        "max_jobs": settings.jobs.worker_max_jobs if lane == "calls" else settings.jobs.worker_batch_jobs,
        # ServerWorker waits for a wake-up (or its fallback poll) itself, and sets how many ids each poll reads
        "poll_delay": 0,
        "keep_result": 0,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "handle_signals": True,
    }
