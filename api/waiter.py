"""Blocking waits and long polls that wake within milliseconds of a job finishing.

One Redis pub/sub subscription per API process (channel `s402:jobs:done`, the finished job's id as payload)
wakes the local waiters of that job. FINISH_JOB's announcement also carries the job as it left it (after the id
and a newline, when it is small): a waiter of that job takes it from there instead of reading it back. Pub/sub
can drop a message (a reconnect, a slow consumer), so a waiter also re-reads the job every `RECHECK_S` and after
every reconnect: a lost notification costs latency, never a result. Ids announced in the last RECENT_S are
remembered, so a call that has just created its job can wait for it without reading it first (the job may only
have finished if its id was announced).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
import structlog
from redis.asyncio import Redis

from shared import keys
from shared.jobs import TERMINAL, JobRecord, JobStore, announced_record

log = structlog.get_logger("api.waiter")

T = TypeVar("T")
RECHECK_S = 2.0
RECENT_S, MAX_RECENT = 10.0, 100_000
MAX_ANNOUNCED = 10_000
RECONNECT_DELAY_S = (0.1, 0.5, 1.0, 2.0)


class JobWaiter:
    def __init__(self, redis: Redis, store: JobStore) -> None:
        self._redis = redis
        self._store = store
        self._waiters: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        self._recent: dict[str, float] = {}  # ids announced lately -> when (oldest first)
        self._announced: dict[str, bytes] = {}  # a waited-for job's fields, as its announcement carried them

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="job-waiter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._wake_all()

    async def wait(self, job_id: str, timeout_s: float, *, current: JobRecord | None = None) -> JobRecord | None:
        """The job once it is finished, or as it stands when `timeout_s` runs out (None if it is gone).
        `current`: the job as its caller just created it, which saves reading it first."""
        done: Callable[[JobRecord], bool] = lambda record: record.status in TERMINAL  # noqa: E731
        return await self.wait_for(job_id, timeout_s, self._read_job, done, current=current)

    async def _read_job(self, job_id: str) -> JobRecord | None:
        """The job as its announcement carried it (taken: another waiter of it reads it), else as Redis has it."""
        fields = self._announced.pop(job_id, None)
        record = announced_record(fields) if fields is not None else None
        return record if record is not None and record.id == job_id else await self._store.get(job_id)

    async def wait_for(
        self,
        subject_id: str,
        timeout_s: float,
        read: Callable[[str], Awaitable[T | None]],
        done: Callable[[T], bool],
        *,
        current: T | None = None,
    ) -> T | None:
        """`read(subject_id)` once `done` says so (woken by its id on the channel), or when `timeout_s` runs out.
        Batches are announced on the same channel as jobs when they complete. `current`: the subject as it was
        just now (used instead of a first read, unless its id was announced meanwhile or we are not listening)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while True:
                future: asyncio.Future[None] = loop.create_future()
                self._waiters[subject_id].add(future)
                try:
                    fresh = current is not None and self.subscribed.is_set() and subject_id not in self._recent
                    value = current if fresh else await read(subject_id)
                    current = None
                    remaining = deadline - loop.time()
                    if value is None or done(value) or remaining <= 0:
                        return value
                    await asyncio.wait({future}, timeout=min(remaining, RECHECK_S))
                finally:
                    self._forget(subject_id, future)
        finally:  # an announcement kept for this wait, which ended before reading it, is nobody's now
            if subject_id not in self._waiters:
                self._announced.pop(subject_id, None)

    def _forget(self, job_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                del self._waiters[job_id]

    def _wake(self, job_id: str) -> None:
        for future in self._waiters.get(job_id, ()):
            if not future.done():
                future.set_result(None)

    def _remember(self, subject_id: str) -> None:
        now = asyncio.get_running_loop().time()
        self._recent[subject_id] = now
        for old, at in list(itertools.islice(self._recent.items(), 16)):  # a few of the oldest each time
            if now - at <= RECENT_S and len(self._recent) <= MAX_RECENT:
                break
            del self._recent[old]

    def _wake_all(self) -> None:
        for job_id in list(self._waiters):
            self._wake(job_id)

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
                self.subscribed.clear()
                self._wake_all()  # they re-read their job: nothing is missed while we were away
                delay = RECONNECT_DELAY_S[min(failures, len(RECONNECT_DELAY_S) - 1)]
                failures += 1
                log.warning("job notifications lost, reconnecting", error=type(exc).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.JOBS_DONE_CHANNEL)
            self.subscribed.set()
            self._wake_all()
            while True:
                message = await pubsub.get_message(timeout=30.0)
                if message is not None and message.get("type") == "message":
                    subject, _, fields = message["data"].partition(b"\n")
                    subject_id = subject.decode()
                    if fields and subject_id in self._waiters:  # kept for the waiter it wakes
                        if len(self._announced) >= MAX_ANNOUNCED:  # (waits that timed out as it came)
                            self._announced.clear()
                        self._announced[subject_id] = fields
                    self._remember(subject_id)
                    self._wake(subject_id)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
