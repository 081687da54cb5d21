"""Workers' heartbeats: which worker processes are alive, for `/readyz` and `GET /api/status`.

One sorted set per kind of worker (`invocation`, `batch`: the batch lane's, `health`), beaten every
HEARTBEAT_INTERVAL_S on Redis's clock:
docs/architecture.md, "Processes" (why a set, not a key per worker) and "Redis".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Literal

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.clock import utc_iso
from shared.keys import PREFIX, RUNNING_JOBS, SCRIPTS, registered
from shared.models import Camel

WorkerKind = Literal["invocation", "batch", "health"]
KINDS: tuple[WorkerKind, ...] = ("invocation", "batch", "health")
HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TTL_S = 15.0

log = structlog.get_logger("shared.liveness")


def workers_key(kind: str) -> str:
    return f"{PREFIX}:workers:{kind}"


BEAT = SCRIPTS["worker_heartbeat"]  # one beat (shared/lua/worker_heartbeat.lua)


class WorkerLiveness(Camel, frozen=True):
    alive: bool
    last_seen_at: str | None  # the freshest heartbeat of a live worker of this kind
    count: int  # live workers of this kind


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Heartbeat:
    """A worker's heartbeat: a task that beats every `interval_s` from `start` until `stop`, or until the task it
    is tied to ends (an arq worker's main task: stopping the worker stops its heartbeat, even when its shutdown
    hook never runs)."""

    def __init__(
        self,
        redis: Redis,
        kind: WorkerKind,
        *,
        worker_id: str | None = None,
        interval_s: float = HEARTBEAT_INTERVAL_S,
        ttl_s: float = HEARTBEAT_TTL_S,
    ) -> None:
        self.kind = kind
        self.worker_id = worker_id or new_worker_id()
        self._redis = redis
        self._beat = registered(redis, BEAT)
        self._interval_s = interval_s
        self._ttl_ms = int(ttl_s * 1000)
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        await self._beat(keys=[workers_key(self.kind)], args=[self.worker_id, self._ttl_ms])

    def start(self, *, tied_to: asyncio.Task[object] | None = None) -> None:
        self._task = asyncio.create_task(self._run(), name=f"heartbeat:{self.kind}")
        if tied_to is not None:
            tied_to.add_done_callback(self._cancel)

    async def stop(self) -> None:
        """Stop beating and leave the set at once (else the member lapses after the TTL)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(RedisError, OSError):
            await self._redis.zrem(workers_key(self.kind), self.worker_id)

    def _cancel(self, _: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("heartbeat not recorded", kind=self.kind, error=type(exc).__name__)
            await asyncio.sleep(self._interval_s)


async def read_liveness(
    redis: Redis, kinds: Sequence[WorkerKind] = KINDS, *, ttl_s: float = HEARTBEAT_TTL_S
) -> dict[str, WorkerLiveness]:
    """Live workers per kind, in one pipeline. Raises RedisError/OSError when Redis cannot answer."""
    pipe = redis.pipeline(transaction=False)
    pipe.time()
    for kind in kinds:
        pipe.zrange(workers_key(kind), 0, -1, withscores=True)
    (seconds, micros), *rows = await pipe.execute()
    now_ms = seconds * 1000 + micros / 1000
    return {kind: _liveness(now_ms, members, ttl_s * 1000) for kind, members in zip(kinds, rows, strict=True)}


async def read_running_jobs(redis: Redis, *, ttl_s: float = HEARTBEAT_TTL_S) -> int:
    """How many jobs the live invocation and batch workers hold (each writes its own count, shared/metrics.py),
    in one pipeline: a worker that died unannounced stops counting once its heartbeat is older than `ttl_s`.
    Raises RedisError/OSError when Redis cannot answer."""
    pipe = redis.pipeline(transaction=False)
    pipe.time()
    pipe.hgetall(RUNNING_JOBS)
    for kind in ("invocation", "batch"):
        pipe.zrange(workers_key(kind), 0, -1, withscores=True)
    (seconds, micros), counts, *rows = await pipe.execute()
    now_ms = seconds * 1000 + micros / 1000
    live = {member for members in rows for member, _ in _fresh(now_ms, members, ttl_s * 1000)}
    return sum(int(count) for worker, count in counts.items() if worker in live)


def _fresh(now_ms: float, members: Sequence[tuple[bytes, float]], ttl_ms: float) -> list[tuple[bytes, float]]:
    """The members that beat within `ttl_ms` of `now_ms` (Redis's clock): the live workers."""
    return [(member, score) for member, score in members if score >= now_ms - ttl_ms]


def _liveness(now_ms: float, members: Sequence[tuple[bytes, float]], ttl_ms: float) -> WorkerLiveness:
    fresh = [score for _, score in _fresh(now_ms, members, ttl_ms)]
    last = max(fresh) if fresh else None
    seen = utc_iso(last) if last is not None else None
    return WorkerLiveness(alive=bool(fresh), last_seen_at=seen, count=len(fresh))
