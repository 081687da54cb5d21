"""How invocation workers take jobs off arq's queues (single calls' or the batch lane's, workers/lanes.py):
`ServerWorker` is arq's Worker with five changes: a poll is one script (CLAIM), leases keep running jobs out of
polls, workers are woken (the queue's wake-up channel), a tool job runs with no bookkeeping round trip of arq's
(its id is the whole job: no payload), and a finished job costs arq no round trip (EndedJobs).

Each change and why: docs/architecture.md, "Workers and arq". The arq internals this relies on are named in
shared/arq_seam.py and checked against the pinned arq by tests/test_arq_seam.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

import structlog
from arq import Retry
from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.arq_seam import RUN_TOOL
from shared.clock import monotonic
from shared.jobs import JOB_ID_PREFIX, Started, read_started
from shared.keys import BATCH_QUEUE_NAME, SCRIPTS, WAKE_OF, registered
from shared.lua import pack

LEASE_S = 5.0
LEASE_RENEW_S = 1.0
FALLBACK_POLL_S = 0.1
# Polls at most this often: every queued job wakes every worker, and with many workers most of them find nothing.
# Wakes that come sooner are taken together (one poll claims every job due by then); a quiet worker still polls
# at once.
MIN_POLL_INTERVAL_S = 0.005
RESUBSCRIBE_S = 1.0
# a poll takes at most this many jobs (and never more than the worker has room for), reading a few more ids: one
# may be a cron job running elsewhere (not leased, so still due)
MAX_CLAIM = 256
READ_MARGIN = 16
ENDED_JOBS = "ended_jobs"  # the worker context's EndedJobs (workers/tasks.py reports to it)
CLAIM_STARTS = "claim_starts"  # the calls lane's ClaimStarts (workers/tasks.py): CLAIM starts the jobs it can
JOBS_HELD = "jobs_held"  # the worker context's count of the jobs it runs now (WorkerMetrics writes it)

log = structlog.get_logger("workers.queue")

CLAIM = SCRIPTS["claim_jobs"]  # shared/lua/claim_jobs.lua: due ids nobody runs, marked and leased


async def renew_leases(redis: Redis, queue: str, job_ids: list[str]) -> None:
    """Extend running tool jobs' leases: each one's place at the lease's end on its queue (XX: never put back a job
    that has left it). One command for all of them."""
    until = timestamp_ms() + int(LEASE_S * 1000)
    await redis.zadd(queue, dict.fromkeys(job_ids, until), xx=True)


class Leases:
    """The leases of the attempts this worker runs (it took each job with a lease of LEASE_S, CLAIM): every
    `every_s`, one ZADD renews those held since the last renewal or longer, while their attempts run. When the
    worker dies the leases lapse and the jobs run again elsewhere (START_JOB counts the new attempt). An attempt
    that ends is dropped at once; its job's place is then its ending's (arq's Retry puts it back `defer` later: a
    renewal already on its way when the attempt ended can still move it to the lease's end, at most LEASE_S away,
    as one job's own renewal could). One round trip a second for all of a worker's jobs (a renewal per job, with a
    timer each, cost 1,024 round trips a second at 1,024 in flight)."""

    def __init__(self, redis: Redis, queue: str, every_s: float = LEASE_RENEW_S) -> None:
        self._redis, self._queue, self._every_s = redis, queue, every_s
        self._held: dict[str, float] = {}  # job id -> when its lease was taken or last renewed (monotonic)
        self._task: asyncio.Task[None] | None = None

    def hold(self, job_id: str) -> None:
        self._held[job_id] = monotonic()

    def release(self, job_id: str) -> None:
        self._held.pop(job_id, None)

    def held(self) -> int:
        return len(self._held)

    def start(self, *, tied_to: asyncio.Task[Any] | None = None) -> None:
        self._task = asyncio.create_task(self._run(), name="leases")
        if tied_to is not None:
            tied_to.add_done_callback(self._cancel)

    def _cancel(self, _: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            await self.renew()

    async def renew(self) -> None:
        """Renew the leases held at least `every_s` (a lost renewal is not the lease's end: the next one comes)."""
        now = monotonic()
        due = [job_id for job_id, since in self._held.items() if now - since >= self._every_s * 0.9]
        if not due:
            return
        for job_id in due:
            self._held[job_id] = now
        try:
            await renew_leases(self._redis, self._queue, due)
        except (RedisError, OSError) as exc:
            log.warning("lease renewal failed; the next one tries again", error=type(exc).__name__, jobs=len(due))


class QueueWake:
    """Listens on a queue's wake-up channel and sets `event` on every message; sets it too when (re)subscribed, for
    jobs queued while it was not listening. Redis trouble: it tries again every RESUBSCRIBE_S (polls go on
    meanwhile)."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self.event = asyncio.Event()
        self.event.set()
        self._redis = redis
        self._channel = channel
        self._task: asyncio.Task[None] | None = None

    def start(self, *, tied_to: asyncio.Task[Any] | None) -> None:
        self._task = asyncio.create_task(self._listen(), name="queue-wake")
        if tied_to is not None:
            tied_to.add_done_callback(lambda _: self.stop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.event.set()
                    async for _ in pubsub.listen():
                        self.event.set()
            except (RedisError, OSError) as exc:
                log.debug("queue wake-ups lost; polling only", error=type(exc).__name__)
            await asyncio.sleep(RESUBSCRIBE_S)


class EndedJobs:
    """The jobs whose attempt ended them with our own script (which took them off arq's queue too): the attempt
    adds its job (workers/tasks.py), and finish_job, which arq calls next, takes it out and so leaves arq's keys
    alone."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def add(self, job_id: str) -> None:
        self._ids.add(job_id)

    def take(self, job_id: str) -> bool:
        """Whether the job was reported ended (and forget it)."""
        if job_id in self._ids:
            self._ids.discard(job_id)
            return True
        return False


class ServerWorker(Worker):
    """arq's Worker, claiming with CLAIM, leasing tool jobs and woken by its queue's wake-ups (shared/keys.py
    WAKE_OF; docs/architecture.md)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake: QueueWake | None = None
        self._scores: dict[str, int] = {}  # a running job's score when claimed (see finish_job)
        self._services: dict[str, str] = {}  # a claimed job's service, until it runs (see run_job)
        self._started: dict[str, Started] = {}  # a job CLAIM started: START_JOB's answer, until it runs
        self._claim: Any = None
        self._polled_at = 0.0
        self.ended = EndedJobs()  # what the attempts report; finish_job reads it
        self.ctx[ENDED_JOBS] = self.ended
        self.ctx[JOBS_HELD] = lambda: len(self.job_tasks)  # the jobs it runs now (the running-jobs gauge)

    def wake(self) -> None:
        """Poll now (also ends the wait of a worker told to stop: burst mode)."""
        if self._wake is not None:
            self._wake.event.set()

    async def _poll_iteration(self) -> None:
        if self._wake is None:
            self._wake = QueueWake(self.pool, WAKE_OF[self.queue_name])
            self._wake.start(tied_to=asyncio.current_task())
        if not self.burst:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FALLBACK_POLL_S):
                    await self._wake.event.wait()
            if (early := self._polled_at + MIN_POLL_INTERVAL_S - self.loop.time()) > 0:
                await asyncio.sleep(early)
        self._wake.event.clear()
        self._polled_at = self.loop.time()
        # arq's poll iteration, with CLAIM for its read of the queue and its start_jobs
        room = min(MAX_CLAIM, self.max_jobs - self.job_counter)
        if self.burst and self.max_burst_jobs >= 0:
            room = min(room, self.max_burst_jobs - self._jobs_started())
        if self.allow_pick_jobs and room > 0:
            await self._claim_and_start(room)
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # an error of arq's own job bookkeeping ends the worker, as in arq
        await self.heart_beat()

    async def _claim_and_start(self, room: int) -> None:
        if self._claim is None:
            self._claim = registered(self.pool, CLAIM)
        starts = self.ctx.get(CLAIM_STARTS)
        now = timestamp_ms()
        options = pack(now=now, lease=int(LEASE_S * 1000), mark=int(self.in_progress_timeout_s * 1000),
                       tool_prefix=JOB_ID_PREFIX, room=room, read=room + READ_MARGIN,
                       **(starts.options(now) if starts is not None else {}))  # fmt: skip
        claimed: list[Any] = await self._claim(keys=[self.queue_name], args=[options])
        answered = monotonic()  # (a slot CLAIM booked counts from here, as START_JOB's does)
        if len(claimed) >= 4 * room:  # there may be more: poll again at once
            self.wake()
        for raw_id, raw_score, raw_service, reply in zip(
            claimed[::4], claimed[1::4], claimed[2::4], claimed[3::4], strict=True
        ):
            job_id, score, service = raw_id.decode(), int(float(raw_score)), raw_service.decode()
            await self.sem.acquire()  # arq's: max_jobs + 1 permits, and job_counter < max_jobs here
            self.job_counter += 1
            self._scores[job_id] = score
            self._services[job_id] = service
            if reply is not None:
                self._started[job_id] = read_started(reply, answered)
            elif starts is not None:
                starts.saw(service)  # its next jobs start as they are claimed
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(functools.partial(self._ended, job_id))
            self.tasks[job_id] = task

    async def run_job(self, job_id: str, score: int) -> None:
        """A tool job (its id says so) runs as `run_tool_job` says: `run_tool(id)`, a batch item's with
        `batch=True` (the batch lane's queue holds only those), with the service CLAIM read for it (START_JOB books
        its upstream slot). Anything else (arq's cron jobs) as arq runs it."""
        if not job_id.startswith(JOB_ID_PREFIX):
            await super().run_job(job_id, score)
            return
        service, begun = self._services.pop(job_id, ""), self._started.pop(job_id, None)
        await self.run_tool_job(
            job_id, score, batch=self.queue_name == BATCH_QUEUE_NAME, service=service, started=begun
        )

    async def run_tool_job(
        self, job_id: str, score: int, *, batch: bool, service: str = "", started: Started | None = None
    ) -> None:
        """`run_tool(job_id, batch=batch, service=service, started=started)` as arq's run_job runs a job, less its
        bookkeeping: no payload (the id is the job), no try counter (START_JOB counts attempts, and the job's
        deadline bounds them), no per-job log lines or result (the attempt logs, the job hash holds the result). As
        in arq: the attempt runs under the function's timeout; a `Retry` puts the job back `defer` later, a
        cancellation (the worker stops) at its old place; any other error ends arq's part of the job (logged)."""
        ctx = {**self.ctx, "job_id": job_id, "score": score}  # (when it was queued: its record's createdAt)
        if self.on_job_start:
            await self.on_job_start(ctx)
        finish, incr_score = True, None
        function = self.functions[RUN_TOOL]
        timeout_s = self.job_timeout_s if function.timeout_s is None else function.timeout_s
        attempt = function.coroutine(ctx, job_id, batch=batch, service=service, started=started)
        self.job_tasks[job_id] = task = self.loop.create_task(attempt)
        try:
            await asyncio.wait_for(task, timeout_s)
        except Retry as exc:
            finish = False
            if exc.defer_score:
                incr_score = exc.defer_score + (timestamp_ms() - score)
            self.jobs_retried += 1
        except asyncio.CancelledError:
            finish = False
            self.jobs_retried += 1
        except Exception:
            log.exception("tool job failed", job_id=job_id)
            self.jobs_failed += 1
        else:
            self.jobs_complete += 1
        finally:
            del self.job_tasks[job_id]
        await asyncio.shield(self.finish_job(job_id, finish, None, 0, False, incr_score, None))

    def _ended(self, job_id: str, _: object) -> None:
        self._scores.pop(job_id, None)
        self._services.pop(job_id, None)
        self._started.pop(job_id, None)
        self.ended.take(job_id)
        full = self.job_counter >= self.max_jobs
        self._release_sem_dec_counter_on_complete()
        if full:  # room again: jobs may have waited for it
            self.wake()

    async def finish_job(  # noqa: PLR0917 (arq's signature)
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """A tool job that goes back on the queue (arq's Retry, or cancelled by a stopping worker) gets its place
        from the score it was claimed with (arq adds `incr_score` to the queue's score, which the lease moved):
        `defer` after the Retry, or its old place. A job whose attempt ended it needs nothing more (its script
        took it off the queue). Everything else is arq's."""
        if self.ended.take(job_id) and finish:
            return
        score = self._scores.get(job_id)
        if finish or score is None or not job_id.startswith(JOB_ID_PREFIX):
            await super().finish_job(
                job_id, finish, result_data, result_timeout_s, keep_result_forever, incr_score, keep_in_progress
            )
            return
        async with self.pool.pipeline(transaction=True) as pipe:
            pipe.delete(in_progress_key_prefix + job_id)
            pipe.zadd(self.queue_name, {job_id: score + (incr_score or 0)}, xx=True)
            await pipe.execute()
