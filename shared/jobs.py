"""Jobs: the record of one tool call, its state machine, and the store both the API and the workers use.

    queued -> running -> succeeded | failed
       |         |  \\-> queued (a retryable failure waits for its retry)
       |         \\-> canceled (cancel requested while running)
       \\-> canceled | expired (deadline passed before it ran)

A job lives in one Redis hash (`shared.keys.job_key`); every transition is one Lua script, so a cancel and a
start can never both win. Finished jobs are kept for the retention time, then the hash expires: the job id
carries its creation time, so the API can tell an expired job (410) from one that never existed (404).
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any, Literal

import msgspec
from arq.jobs import serialize_job
from redis.asyncio import Redis

from shared import keys

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled", "expired"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled", "expired"})
ANONYMOUS = "anon"
JOB_ID_PREFIX = "job_"
RUN_TOOL = "run_tool"
_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()


def arq_serialize(data: dict[str, Any]) -> bytes:
    """arq job payloads as msgpack, not pickle (WorkerSettings.job_serializer)."""
    return _msgpack.encode(data)


def arq_deserialize(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.msgpack.decode(raw)
    return data


def arq_payload(job_id: str, enqueue_ms: int) -> bytes:
    """What `ArqRedis.enqueue_job("run_tool", job_id)` would store, written by ENQUEUE_JOB with the job record."""
    return serialize_job(RUN_TOOL, (job_id,), {}, None, enqueue_ms, serializer=arq_serialize)


class JobError(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    code: str
    message: str
    retryable: bool
    upstream_request_id: str | None = None


EXPIRED = JobError(code="job_expired", message="the job's deadline passed before it ran", retryable=True)


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The hash as stored (field names are the hash's)."""

    id: str
    service: str
    action: str
    owner: str
    input: str
    requestId: str
    createdAt: int
    deadline: int
    status: JobStatus
    attempts: int = 0
    startedAt: int | None = None
    finishedAt: int | None = None
    retryAt: int | None = None
    result: str | None = None
    error: str | None = None
    lastError: str | None = None
    cancel: str | None = None

    def job_error(self) -> JobError | None:
        """The final error, or while a retry waits, the error it is retrying."""
        if self.error:
            return msgspec.json.decode(self.error, type=JobError)
        return self.last_error() if self.status == "queued" else None

    def last_error(self) -> JobError | None:
        return msgspec.json.decode(self.lastError, type=JobError) if self.lastError else None


class JobView(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """A job as clients see it (GET /api/jobs/{jobId}, 202 answers, batch listings)."""

    job_id: str
    service_id: str
    status: str
    attempts: int
    created_at: str
    deadline_at: str
    started_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = None
    next_attempt_at: str | None = None
    queue_position: int | None = None
    result: msgspec.Raw | None = None
    error: JobError | None = None
    links: dict[str, str] = {}


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def job_view(record: JobRecord, *, retention_ms: int, queue_position: int | None = None) -> JobView:
    finished = record.status in TERMINAL
    return JobView(
        job_id=record.id,
        service_id=record.service,
        status=record.status,
        attempts=record.attempts,
        created_at=iso_ms(record.createdAt) or "",
        deadline_at=iso_ms(record.deadline) or "",
        started_at=iso_ms(record.startedAt),
        finished_at=iso_ms(record.finishedAt),
        expires_at=iso_ms(record.finishedAt + retention_ms) if finished and record.finishedAt else None,
        next_attempt_at=iso_ms(record.retryAt) if record.status == "queued" else None,
        queue_position=queue_position if record.status == "queued" else None,
        result=msgspec.Raw(record.result.encode()) if record.result and record.status == "succeeded" else None,
        error=record.job_error(),
        links={"self": f"/api/jobs/{record.id}"},
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_job_id(created_ms: int | None = None) -> str:
    """Unguessable (128 random bits) and carrying its creation time, for 404-versus-410."""
    stamp = (created_ms if created_ms is not None else now_ms()).to_bytes(6, "big")
    raw = base64.b32encode(stamp + secrets.token_bytes(16)).decode().rstrip("=").lower()
    return JOB_ID_PREFIX + raw


def job_created_ms(job_id: str) -> int | None:
    if not job_id.startswith(JOB_ID_PREFIX) or len(job_id) != len(JOB_ID_PREFIX) + 36:
        return None
    try:
        raw = base64.b32decode(job_id[len(JOB_ID_PREFIX) :].upper() + "====")
    except ValueError:
        return None
    return int.from_bytes(raw[:6], "big")


class JobStore:
    """Reads and moves jobs. Holds no state besides the Redis client and the registered scripts."""

    def __init__(self, redis: Redis, *, retention_s: int) -> None:
        self.redis = redis
        self.retention_ms = retention_s * 1000
        self._enqueue = redis.register_script(keys.ENQUEUE_JOB)
        self._start = redis.register_script(keys.START_JOB)
        self._finish = redis.register_script(keys.FINISH_JOB)
        self._requeue = redis.register_script(keys.REQUEUE_JOB)
        self._cancel = redis.register_script(keys.CANCEL_JOB)

    async def create(
        self, record: JobRecord, arq_payload: bytes, *, idempotency: tuple[str, str] | None = None
    ) -> tuple[bool, str]:
        """Store and enqueue a job. Returns (created, stored idempotency value or the new one)."""
        ttl_ms = record.deadline - record.createdAt + self.retention_ms
        fields = {k: v for k, v in msgspec.structs.asdict(record).items() if v is not None}
        flat: list[Any] = [item for pair in fields.items() for item in pair]
        idem_key, idem_value = idempotency if idempotency else ("", "")
        created, value = await self._enqueue(
            keys=[keys.job_key(record.id), keys.ARQ_JOB_PREFIX + record.id, keys.QUEUE_NAME, idem_key],
            args=[record.id, arq_payload, record.createdAt, ttl_ms, idem_value, *flat],
        )
        return bool(created), value.decode() if isinstance(value, bytes) else str(value)

    async def get(self, job_id: str) -> JobRecord | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(keys.job_key(job_id))  # type: ignore[misc]
        if not raw:
            return None
        return msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, JobRecord, strict=False)

    async def cancel_requested(self, job_id: str) -> bool:
        flag: bytes | None = await self.redis.hget(keys.job_key(job_id), "cancel")  # type: ignore[misc]
        return flag == b"1"

    async def queue_position(self, job_id: str) -> int | None:
        rank: int | None = await self.redis.zrank(keys.QUEUE_NAME, job_id)
        return rank

    async def start(self, job_id: str, *, min_budget_ms: int) -> tuple[str, int]:
        status, attempts = await self._start(
            keys=[keys.job_key(job_id)],
            args=[now_ms(), keys.JOBS_DONE_CHANNEL, self.retention_ms, _json.encode(EXPIRED), min_budget_ms],
        )
        return status.decode(), int(attempts)

    async def succeed(self, job_id: str, envelope: dict[str, Any]) -> bool:
        return await self._finish_with(job_id, "succeeded", "result", _json.encode(envelope))

    async def fail(self, job_id: str, error: JobError, status: JobStatus = "failed") -> bool:
        return await self._finish_with(job_id, status, "error", _json.encode(error))

    async def _finish_with(self, job_id: str, status: str, field: str, payload: bytes) -> bool:
        done = await self._finish(
            keys=[keys.job_key(job_id)],
            args=[status, now_ms(), field, payload, self.retention_ms, keys.JOBS_DONE_CHANNEL],
        )
        return bool(done)

    async def requeue(self, job_id: str, retry_at_ms: int, error: JobError) -> bool:
        return bool(await self._requeue(keys=[keys.job_key(job_id)], args=[retry_at_ms, _json.encode(error)]))

    async def cancel(self, job_id: str) -> str:
        error = _json.encode(JobError(code="canceled", message="the job was canceled before it ran", retryable=False))
        result = await self._cancel(
            keys=[keys.job_key(job_id), keys.QUEUE_NAME, keys.ARQ_JOB_PREFIX + job_id],
            args=[job_id, now_ms(), error, self.retention_ms, keys.JOBS_DONE_CHANNEL],
        )
        return result.decode() if isinstance(result, bytes) else str(result)
