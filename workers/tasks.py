"""arq jobs. `run_tool` is the one owner of retry decisions.

One run of `run_tool` is one attempt: take the job (Lua, so a cancel cannot race it), wait for a rate-limit slot,
call the upstream once. Failures of a retryable kind (shared/failures.py: throttled, server, unavailable) go back
on the queue with full-jitter exponential backoff while the job's deadline allows; everything else, and anything
past the deadline, ends the job with a clean error (START_JOB counts attempts; arq keeps no try counter for tool
jobs, workers/queue.py). Each upstream attempt and each finished job's outcome feed the service's live quality
figures (shared/quality.py says what counts), counted in memory and written within a second.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, TypedDict

import msgspec
import structlog
from arq import Retry
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.batches import BatchStore
from shared.catalog import Catalog, envelope
from shared.config import JobSettings, Settings
from shared.jobs import BookedSlot, JobError, JobRecord, JobStore, SlotBooking, Started, now_ms
from shared.keys import LEDGER, job_key
from shared.metrics import JOBS_FINISHED, QUEUE_WAIT, WorkerMetrics
from shared.payments import PaymentStore
from shared.quality import QualityStore
from workers import tenancy
from workers.queue import EndedJobs, Leases
from workers.ratelimit import CallCanceled, JobCall, RateLimiter, SlotTooFar
from workers.upstream import Upstream, UpstreamError

log = structlog.get_logger("workers.tasks")

# One attempt waits at most this long for its rate-limit slot; a slot further away means "come back later",
# so an attempt (and so arq's job timeout, which cancels an attempt that runs longer) stays short.
MAX_SLOT_WAIT_S = 5.0
REDIS_LOST_RETRY_S = 1.0

MIN_CALL_BUDGET_S = 0.5
MIN_CALL_BUDGET_MS = int(MIN_CALL_BUDGET_S * 1000)
# CLAIM starts the jobs of the last this many services a worker's claims named (ClaimStarts)
RECENT_SERVICES = 16

# Batch items run in the batch lane's worker (workers/lanes.py), at most SERVER402_WORKER_BATCH_JOBS at once
# (BatchSlots, and the lane's max_jobs); one found on the calls lane's queue (queued before the lanes existed) is
# held to the same, so single calls always find room.
BATCH_SLOT_WAIT_S = 5.0


class BatchSlots:
    """At most `running` batch items run on this worker; at most as many more wait for a turn (holding an arq
    slot meanwhile). Any further one steps back onto the queue at once (arq Retry), so batch items never hold
    more than 2 x `running` of the worker's slots, whatever number of batches is queued."""

    def __init__(self, running: int) -> None:
        self._semaphore = asyncio.Semaphore(running)
        self._running = running
        self._waiting = 0

    async def acquire(self) -> bool:
        """True with a slot held (release it); False when the item should step back."""
        if self._semaphore.locked() and self._waiting >= self._running:
            return False
        self._waiting += 1
        try:
            await asyncio.wait_for(self._semaphore.acquire(), BATCH_SLOT_WAIT_S)
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        return True

    def release(self) -> None:
        self._semaphore.release()


class WorkerContext(TypedDict):
    redis: Redis
    settings: Settings
    catalog: Catalog
    store: JobStore
    payments: PaymentStore
    upstream: Upstream
    limiter: RateLimiter
    metrics: WorkerMetrics
    quality: QualityStore  # the services' attempts and outcomes (shared/quality.py)
    batches: BatchStore
    batch_slots: BatchSlots
    namespaces: tenancy.Namespaces
    leases: Leases  # the running attempts' leases on the worker's queue (its lane's), renewed together
    ended_jobs: EndedJobs  # ServerWorker's: an attempt that ended its job reports it (arq then leaves its keys)


def backoff_s(attempt: int, jobs: JobSettings) -> float:
    """Full jitter: uniform(0, min(cap, base * 2^(attempt-1)))."""
    ceiling = min(jobs.retry_cap_s, jobs.retry_base_s * 2 ** max(0, attempt - 1))
    return random.uniform(0, ceiling)


async def run_tool(
    ctx: WorkerContext, job_id: str, *, batch: bool = False, service: str = "", started: Started | None = None
) -> None:
    """One attempt, holding a short lease on the job while it runs (workers/queue.py `Leases`). `batch`: the job is a
    batch item (the batch lane runs it so), run only when a batch slot is free. `service`: the job's, as CLAIM read
    it ('' when not known): START_JOB then books the job's upstream slot as it starts it. `started`: START_JOB's
    answer when CLAIM started the job already (see `ClaimStarts`).

    An attempt that loses Redis leaves the job on arq's queue (arq's Retry): arq takes any other error for the
    job's end and drops it from its queue, and when Redis answers again by then (a dropped connection, a quick
    restart) the job would stay "running" for ever, its paid call neither made nor given back. Run again, it
    starts a new attempt, or finds it finished if the lost command had finished it."""
    ctx["leases"].hold(job_id)
    try:
        if not batch:
            ended = await _run_job(ctx, job_id, service, started)
        elif not await ctx["batch_slots"].acquire():  # still queued: this worker or another takes it again shortly
            raise Retry(defer=random.uniform(0.2, 1.0))
        else:
            try:
                ended = await _run_job(ctx, job_id, service)
            finally:
                ctx["batch_slots"].release()
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("attempt abandoned: redis lost", error=type(exc).__name__, retry_in_s=REDIS_LOST_RETRY_S)
        raise Retry(defer=REDIS_LOST_RETRY_S) from None
    finally:
        ctx["leases"].release(job_id)
    if ended:
        ctx["ended_jobs"].add(job_id)


async def _run_job(ctx: WorkerContext, job_id: str, service: str, begun: Started | None = None) -> bool:
    """One attempt; True when the job has ended (its ending script deleted arq's keys for it, see
    workers/queue.py). A retry leaves by raising arq's Retry."""
    store = ctx["store"]
    if begun is None:  # (CLAIM did not start it)
        begun = await store.start(job_id, min_budget_ms=MIN_CALL_BUDGET_MS, booking=_booking(ctx, service))
    status, attempt, record, booked = begun
    if record is None:  # canceled or expired long ago
        return False
    if status not in ("running", "out_of_time"):
        _count_finished(ctx, record, await _not_started(store, record, status))
        return True
    if status == "out_of_time":  # a retry that waited in the queue too long
        last = record.last_job_error() or DEADLINE_PASSED
        _count_finished(ctx, record, await _give_up(ctx, record, attempt, last))
        return True
    if attempt == 1:
        ctx["metrics"].observe(QUEUE_WAIT, (record.service,), max(0, now_ms() - record.created_at) / 1000)
    structlog.contextvars.bind_contextvars(service_id=record.service, attempt=attempt)
    started = time.perf_counter()
    outcome = await _attempt(ctx, record, attempt, booked)
    _count_finished(ctx, record, outcome)
    log.info("attempt", outcome=outcome, duration_ms=round((time.perf_counter() - started) * 1000, 1))
    return True


class ClaimStarts:
    """What CLAIM needs to start the jobs it claims, one round trip fewer than START_JOB after it (workers/queue.py,
    shared/lua/claim_jobs.lua): START_JOB's options and the upstream bookings of the last RECENT_SERVICES services
    this worker's claims named (a job of another service is started by START_JOB, and its service is remembered).
    Only the single calls' lane: a batch item starts once it has a batch slot."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._bookings: dict[str, dict[str, Any]] = {}

    def saw(self, service: str) -> None:
        """A claim named `service`."""
        if service in self._bookings:
            return
        booking = _booking(self._ctx, service)
        if booking is None:
            return
        if len(self._bookings) >= RECENT_SERVICES:
            del self._bookings[next(iter(self._bookings))]  # the one remembered first
        self._bookings[service] = dict(
            limiter=booking.limiter, interval=booking.interval_us, cap=booking.cap_us, horizon=booking.horizon_us
        )

    def options(self, now: int) -> dict[str, Any]:
        """CLAIM's options for starting jobs as of `now` (ms): none before a claim named a service."""
        if not self._bookings:
            return {}
        start = {**self._ctx["store"].start_options(now, MIN_CALL_BUDGET_MS), "ledger": LEDGER}
        return {"start": start, "bookings": self._bookings}


def _booking(ctx: WorkerContext, service: str) -> SlotBooking | None:
    """The upstream slot START_JOB books for a job of `service` (None when the service is not known here)."""
    spec = ctx["catalog"].specs.get(service)
    if spec is None:
        return None
    qps = ctx["catalog"].terms.for_service(service).qps
    return ctx["limiter"].booking(spec.action, qps, cap_s=MAX_SLOT_WAIT_S)


def _count_finished(ctx: WorkerContext, record: JobRecord, outcome: str) -> None:
    status = outcome.partition(":")[0]
    if status in ("succeeded", "failed", "canceled", "expired"):
        ctx["metrics"].inc(JOBS_FINISHED, (record.service, status))


CANCELED = JobError.of("canceled", "canceled", "the job was canceled")
# A retry found out of time with no error to report (its worker died mid-attempt): the service side failed.
DEADLINE_PASSED = JobError.of("server", "deadline_exceeded", "the job's deadline passed")


async def _not_started(store: JobStore, record: JobRecord, status: str) -> str:
    if status == "cancel_requested":
        await store.fail(record, CANCELED, "canceled", refund="canceled")
        status = "canceled"
    log.info("attempt skipped", status=status)
    return status


async def _attempt(ctx: WorkerContext, record: JobRecord, attempt: int, booked: BookedSlot | None) -> str:
    store = ctx["store"]
    spec = ctx["catalog"].specs[record.service]
    qps = ctx["catalog"].terms.for_service(record.service).qps
    remaining_s = (record.deadline - now_ms()) / 1000
    job = JobCall(job_key(record.id))
    # The request is made ready before the wait for its slot: after the slot only the call itself remains (the
    # limiter sees a call late for its slot, not a call slowed on its way to the upstream).
    params: dict[str, Any] = _decode_input(record.input)
    prefix = await ctx["namespaces"].prefix(record.tenant) if tenancy.needs_namespace(spec.action) else ""
    try:  # face databases and templates: each caller sees only its own (workers/tenancy.py)
        scoped = await tenancy.scope_request(ctx["redis"], spec.action, params, tenant=record.tenant, prefix=prefix)
    except tenancy.TenantError as exc:
        await store.fail(record, JobError.of("input", exc.code, exc.message))
        return f"failed:{exc.code}"
    try:  # the booking script checks the cancel flag when the slot is free at once
        max_wait_s = min(MAX_SLOT_WAIT_S, remaining_s - MIN_CALL_BUDGET_S)
        go = await ctx["limiter"].acquire(
            spec.action, qps, max_wait_s=max_wait_s, job=job, batch=bool(record.batch), booked=booked
        )
    except SlotTooFar:
        return await _retry_or_fail(ctx, record, attempt, _rate_limited_error(), floor_s=MAX_SLOT_WAIT_S / 2)
    except CallCanceled:
        go = False
    else:
        go = go or await store.begin_call(record.id)  # it waited: checked now
    if not go:
        await store.fail(record, CANCELED, "canceled", refund="canceled")  # asked for while the job waited
        return "canceled"
    ctx["quality"].record_execution(record.service)  # the service's executionCount
    started = time.perf_counter()
    try:
        result = await ctx["upstream"].call(spec, scoped, timeout_s=(record.deadline - now_ms()) / 1000)
    except UpstreamError as exc:
        return await _upstream_failed(ctx, record, attempt, exc, prefix)
    latency_ms = (time.perf_counter() - started) * 1000
    output = await tenancy.scope_result(
        ctx["redis"], spec.action, params, result.result, tenant=record.tenant, prefix=prefix
    )
    if await store.succeed(record, envelope(spec.action, output, result.request_id)):
        ctx["quality"].record_result(record.service, ok=True, latency_ms=latency_ms)
    return "succeeded"


async def _upstream_failed(ctx: WorkerContext, record: JobRecord, attempt: int, exc: UpstreamError, prefix: str) -> str:
    """By its kind (workers/upstream.py): a retryable error (throttled, unavailable, server) waits for its retry
    (or ends the job when the deadline would pass). Any other fails the job now: the caller's input was refused
    (charged; says nothing about the service, so no quality figure), or our own credentials or subscription
    were (operator: given back; the service did not work: an error)."""
    message = tenancy.scope_error_message(exc.message, prefix)
    error = JobError.of(exc.kind, exc.code, message, upstream_request_id=exc.request_id)
    if exc.retryable:
        return await _retry_or_fail(ctx, record, attempt, error)
    operator = exc.kind == "operator"
    if await ctx["store"].fail(record, error, refund="operator_error" if operator else "") and operator:
        ctx["quality"].record_result(record.service, ok=False)
    return f"failed:{exc.code}"


async def _finished_if_canceled(store: JobStore, record: JobRecord) -> bool:
    """A cancel asked for while the job ran takes effect here, before the next upstream call (given back)."""
    if not await store.cancel_requested(record.id):
        return False
    await store.fail(record, CANCELED, "canceled", refund="canceled")
    return True


async def _retry_or_fail(
    ctx: WorkerContext, record: JobRecord, attempt: int, error: JobError, *, floor_s: float = 0.0
) -> str:
    store = ctx["store"]
    if await _finished_if_canceled(store, record):
        return "canceled"
    delay_s = max(floor_s, backoff_s(attempt, ctx["settings"].jobs))
    retry_at = now_ms() + int(delay_s * 1000)
    if retry_at + MIN_CALL_BUDGET_S * 1000 >= record.deadline:
        return await _give_up(ctx, record, attempt, error)
    await store.requeue(record.id, retry_at, error)
    raise Retry(defer=delay_s)


async def _give_up(ctx: WorkerContext, record: JobRecord, attempts: int, error: JobError) -> str:
    final = JobError.of(
        error.failure.kind,  # throttled, unavailable or server: what the last attempt met
        error.code,
        f"{error.message} (gave up after {attempts} attempt(s): the job's deadline would pass)",
        upstream_request_id=error.upstream_request_id,
    )
    # 5xx, timeouts, throttling: not the caller's fault (given back), and the service did not work (an error)
    if await ctx["store"].fail(record, final, refund="upstream_failed"):
        ctx["quality"].record_result(record.service, ok=False)
    return f"failed:{error.code}"


def _rate_limited_error() -> JobError:
    return JobError.of(
        "throttled",
        "Throttling.Gateway",
        "the upstream rate limit for this action is fully booked; the call waits for a free slot",
    )


def _decode_input(raw: str) -> dict[str, Any]:
    params: dict[str, Any] = msgspec.json.decode(raw)
    return params


async def expire_payments(ctx: WorkerContext) -> int:
    """Cron: payments past their expiry get status expired and one 'expired' ledger entry (unused calls lapse)."""
    total = 0
    while (swept := await ctx["payments"].expire_due(batch=500)) > 0:
        total += swept
        if swept < 500:
            break
    if total:
        log.info("payments expired", count=total)
    return total
