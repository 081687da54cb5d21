"""Batches: many tool calls submitted, paid and followed as one.

A batch is accepted whole (CREATE_BATCH), then fanned out a window at a time by the scripts that finish its jobs:
docs/architecture.md, "Batches"; its keys under "Redis".
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.clock import iso, iso_ms
from shared.config import Settings
from shared.jobs import CANCELED_BEFORE_RUN, JobCharge, JobError, JobRecord, JobStore, job_charge, new_job_id, now_ms
from shared.keys import registered
from shared.lua import pack

BatchStatus = Literal["in_progress", "canceling", "completed", "canceled"]
BATCH_ID_PREFIX = "bat_"
MAX_ITEMS = 10_000
MAX_CUSTOM_ID = 200
RESULTS_PAGE = 500
CANCEL_CHUNK = 500
_json = msgspec.json.Encoder()


class BatchItem(msgspec.Struct, array_like=True, frozen=True):
    """One validated item, as the API hands it to the store."""

    custom_id: str
    service: str
    action: str
    payment_id: str  # "" for a free service
    tenant: str
    input: msgspec.Raw


class BatchRecord(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """The hash as stored: its field names are the attributes' in camelCase (`rename`)."""

    id: str
    owner: str
    total: int
    status: BatchStatus
    created_at: int
    request_id: str
    window: int
    deadline_ms: int
    retention_ms: int
    fanned: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    expired: int = 0
    finished: int = 0
    completed_at: int | None = None
    cancel: str | None = None
    webhook: str | None = None
    events: str | None = None  # the batch's own events (batch.completed)
    job_events: str | None = None  # events its items' jobs send to the same webhook

    @property
    def done(self) -> bool:
        return self.status in ("completed", "canceled")


class RequestCounts(msgspec.Struct, frozen=True, kw_only=True):
    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    canceled: int
    expired: int


class BatchWebhook(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    events: list[str]


class BatchView(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """A batch as clients see it (POST, GET and DELETE /api/batches/{id})."""

    batch_id: str
    status: str
    created_at: str
    request_counts: RequestCounts
    progress: float
    completed_at: str | None = None
    expires_at: str | None = None
    webhook: BatchWebhook | None = None
    links: dict[str, str] = {}


class ResultLine(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """One line of `GET /api/batches/{id}/results`."""

    custom_id: str
    job_id: str
    service_id: str
    status: str
    result: msgspec.Raw | None = None
    error: JobError | None = None
    charge: JobCharge | None = None


def new_batch_id(created_ms: int) -> str:
    stamp = created_ms.to_bytes(6, "big")
    raw = base64.b32encode(stamp + secrets.token_bytes(16)).decode().rstrip("=").lower()
    return BATCH_ID_PREFIX + raw


def is_batch_id(value: str) -> bool:
    return value.startswith(BATCH_ID_PREFIX) and len(value) == len(BATCH_ID_PREFIX) + 36 and value[4:].isalnum()


def batch_view(record: BatchRecord, *, retention_ms: int) -> BatchView:
    terminal = record.succeeded + record.failed + record.canceled + record.expired
    counts = RequestCounts(
        total=record.total,
        queued=max(0, record.total - terminal - record.running),
        running=record.running,
        succeeded=record.succeeded,
        failed=record.failed,
        canceled=record.canceled,
        expired=record.expired,
    )
    webhook = None
    if record.webhook:
        events = [e for e in ((record.events or "") + "," + (record.job_events or "")).split(",") if e]
        webhook = BatchWebhook(url=record.webhook, events=events)
    return BatchView(
        batch_id=record.id,
        status=record.status,
        created_at=iso(record.created_at),
        request_counts=counts,
        progress=round(terminal / record.total, 4) if record.total else 1.0,
        completed_at=iso_ms(record.completed_at),
        expires_at=iso_ms(record.completed_at + retention_ms) if record.completed_at else None,
        webhook=webhook,
        links={"self": f"/api/batches/{record.id}", "results": f"/api/batches/{record.id}/results"},
    )


class BatchRefused(Exception):
    """CREATE_BATCH refused a payment: `reason` as ENQUEUE_JOB's, `index` the payment it was about."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


class BatchStore:
    def __init__(self, redis: Redis, *, retention_s: int, deadline_s: float, window: int) -> None:
        self.redis = redis
        self.retention_ms = retention_s * 1000
        self.deadline_ms = int(deadline_s * 1000)
        self.window = window
        self._create = registered(redis, keys.CREATE_BATCH)
        self._cancel = registered(redis, keys.CANCEL_BATCH)

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> BatchStore:
        return cls(
            redis,
            retention_s=settings.jobs.retention_s,
            deadline_s=settings.batches.deadline_s,
            window=settings.batches.window,
        )

    async def create(
        self,
        record: BatchRecord,
        items: list[BatchItem],
        payments: list[tuple[str, str, int]],
        *,
        idempotency: tuple[str, str] | None,
        caller_key: str,
    ) -> tuple[int, str]:
        """Store and pay for a batch and queue its first window of jobs. `payments`: (payment id, service id,
        calls). Returns (1, idempotency value) when created, (0, stored value) for an existing batch of the same
        Idempotency-Key; raises BatchRefused when a payment cannot cover its items (then nothing changed)."""
        fields = {k: v for k, v in msgspec.to_builtins(record).items() if v is not None}
        # kept until every item can have finished (then the completed batch is kept for the retention time)
        ttl_ms = record.deadline_ms * 2 + record.retention_ms
        idem_key, idem_value = idempotency if idempotency else ("", "")
        outcome, value, index = await self._create(
            keys=[keys.batch_key(record.id), keys.batch_key(record.id) + ":items", idem_key, keys.LEDGER],
            args=[pack(
                id=record.id, now=record.created_at, at=iso(record.created_at), ttl=ttl_ms, idempotency=idem_value,
                caller=caller_key, window=record.window,
                payments=[(keys.payment_key(pid), service, calls) for pid, service, calls in payments],
                fields=[item for pair in fields.items() for item in pair]),
                *(self._stored_item(record, item) for item in items)],
        )  # fmt: skip
        if int(outcome) == -1:
            raise BatchRefused(value.decode(), int(index))
        return int(outcome), value.decode() if isinstance(value, bytes) else str(value)

    @staticmethod
    def _stored_item(batch: BatchRecord, item: BatchItem) -> bytes:
        """[job id, "" (once arq's payload: items stored before read alike), the job hash's fields but createdAt,
        deadline and status] (see fan_out)."""
        job_id = new_job_id(batch.created_at)
        fields: dict[str, str] = {
            "id": job_id,
            "service": item.service,
            "action": item.action,
            "owner": batch.owner,
            "input": bytes(item.input).decode(),
            "requestId": batch.request_id,
            "tenant": item.tenant,
            "batch": batch.id,
            "customId": item.custom_id,
        }
        if item.payment_id:
            fields |= {"paymentId": item.payment_id, "paymentKind": "token"}
        if batch.webhook and batch.job_events:
            fields |= {"webhook": batch.webhook, "events": batch.job_events}
        return _json.encode([job_id, "", *(x for pair in fields.items() for x in pair)])

    async def get(self, batch_id: str) -> BatchRecord | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(keys.batch_key(batch_id))  # type: ignore[misc]
        if not raw:
            return None
        return msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, BatchRecord, strict=False)

    async def cancel(self, batch_id: str, jobs: JobStore) -> str:
        """Cancel a batch: items not yet queued become canceled jobs, queued jobs are canceled, running ones are
        asked to stop; every call that does not run is given back. Returns the batch's status ('missing')."""
        key = keys.batch_key(batch_id)
        error = _json.encode(CANCELED_BEFORE_RUN)
        while True:
            now = now_ms()
            status, left = await self._cancel(
                keys=[key, keys.QUEUE_NAME, keys.LEDGER],
                args=[CANCEL_CHUNK, now, iso(now), keys.JOBS_DONE_CHANNEL, error],
            )
            status = status.decode() if isinstance(status, bytes) else str(status)
            if status == "missing" or int(left) == 0:
                break
        if status == "canceling":
            start = 0
            while ids := await self.job_ids(batch_id, start, CANCEL_CHUNK):
                await jobs.cancel_many(ids)
                start += len(ids)
        return status

    async def job_ids(self, batch_id: str, start: int, count: int) -> list[str]:
        raw: list[bytes] = await self.redis.lrange(keys.batch_key(batch_id) + ":jobs", start, start + count - 1)  # type: ignore[misc]
        return [r.decode() for r in raw]

    async def results(self, batch_id: str, offset: int = 0) -> AsyncIterator[list[ResultLine]]:
        """Finished items in the order they finished, from `offset`, a page at a time (what has finished by the
        time each page is read)."""
        done_key = keys.batch_key(batch_id) + ":done"
        position = offset
        while True:
            raw: list[bytes] = await self.redis.lrange(done_key, position, position + RESULTS_PAGE - 1)  # type: ignore[misc]
            if not raw:
                return
            position += len(raw)
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in raw:
                    pipe.hmget(keys.JOB_KEY_PREFIX + job_id.decode(), list(_RESULT_FIELDS))
                rows = await pipe.execute()
            yield [line for job_id, row in zip(raw, rows, strict=True) if (line := _result_line(job_id, row))]
            if len(raw) < RESULTS_PAGE:
                return


_RESULT_FIELDS = ("customId", "service", "status", "result", "error", "paymentId", "paymentKind", "refunded")


def _result_line(job_id: bytes, row: list[bytes | None]) -> ResultLine | None:
    custom_id, service, status, result, error, payment_id, kind, refunded = (
        v.decode() if v is not None else None for v in row
    )
    if status is None:  # the job expired after the batch's retention
        return None
    record = JobRecord(
        id=job_id.decode(),
        service=service or "",
        action="",
        owner="",
        input="",
        request_id="",
        created_at=0,
        deadline=0,
        status=status,  # type: ignore[arg-type]
        payment_id=payment_id,
        payment_kind=kind,
        refunded=refunded,
    )
    return ResultLine(
        custom_id=custom_id or "",
        job_id=record.id,
        service_id=record.service,
        status=status,
        result=msgspec.Raw(result.encode()) if result and status == "succeeded" else None,
        error=msgspec.json.decode(error, type=JobError) if error else None,
        charge=job_charge(record),
    )


def encode_input(params: dict[str, Any]) -> msgspec.Raw:
    return msgspec.Raw(_json.encode(params))
