"""Batches: many tool calls submitted, paid and followed as one.

A batch is accepted whole or not at all: the API validates every item first, then one Lua script (CREATE_BATCH)
consumes the calls of every payment it uses, stores the items and queues the batch's fan-out. The fan-out (an
arq job, `fan_out_batch`) turns items into ordinary jobs in chunks, each chunk exactly once (FAN_OUT_BATCH
advances a cursor it must still find where it read it), so a crash mid-way resumes where it stopped. Jobs of a
batch keep the batch's counters in step with every transition (shared/keys.py `batch_moved`), so a batch's
counts and its completion are exact at every moment. Items are queued behind single calls (shared/jobs.py
`queue_score`), so a big batch never slows anyone's single calls.

    s402:batch:{id}        hash   id, owner, total, fanned, running, succeeded, failed, canceled, expired,
                                  finished, status (in_progress | canceling | completed | canceled), cancel,
                                  createdAt, completedAt, requestId, webhook, events, jobEvents
    s402:batch:{id}:items  list   BatchItem (a JSON array) not yet made into jobs
    s402:batch:{id}:jobs   list   job ids in item order
    s402:batch:{id}:done   list   job ids in the order they finished (the results stream reads it)
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.jobs import (
    CANCELED_BEFORE_RUN,
    JobCharge,
    JobError,
    JobRecord,
    arq_payload,
    iso,
    iso_ms,
    job_charge,
    new_job_id,
    now_ms,
    queue_score,
)

BatchStatus = Literal["in_progress", "canceling", "completed", "canceled"]
BATCH_ID_PREFIX = "bat_"
FAN_OUT = "fan_out_batch"
MAX_ITEMS = 10_000
MAX_CUSTOM_ID = 200
RESULTS_PAGE = 500
_json = msgspec.json.Encoder()


class BatchItem(msgspec.Struct, array_like=True, frozen=True):
    """One validated item as stored until it becomes a job."""

    custom_id: str
    service: str
    action: str
    payment_id: str  # "" for a free service
    tenant: str
    input: msgspec.Raw


_item_decoder = msgspec.json.Decoder(BatchItem)


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The hash as stored (field names are the hash's)."""

    id: str
    owner: str
    total: int
    status: BatchStatus
    createdAt: int
    requestId: str
    fanned: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    canceled: int = 0
    expired: int = 0
    finished: int = 0
    completedAt: int | None = None
    cancel: str | None = None
    webhook: str | None = None
    events: str | None = None  # the batch's own events (batch.completed)
    jobEvents: str | None = None  # events its items' jobs send to the same webhook

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
        events = [e for e in ((record.events or "") + "," + (record.jobEvents or "")).split(",") if e]
        webhook = BatchWebhook(url=record.webhook, events=events)
    return BatchView(
        batch_id=record.id,
        status=record.status,
        created_at=iso(record.createdAt),
        request_counts=counts,
        progress=round(terminal / record.total, 4) if record.total else 1.0,
        completed_at=iso_ms(record.completedAt),
        expires_at=iso_ms(record.completedAt + retention_ms) if record.completedAt else None,
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
    def __init__(self, redis: Redis, *, retention_s: int, deadline_s: float) -> None:
        self.redis = redis
        self.retention_ms = retention_s * 1000
        self.deadline_ms = int(deadline_s * 1000)
        self._create = redis.register_script(keys.CREATE_BATCH)
        self._fan_out = redis.register_script(keys.FAN_OUT_BATCH)
        self._cancel = redis.register_script(keys.CANCEL_BATCH)

    async def create(
        self,
        record: BatchRecord,
        items: list[BatchItem],
        payments: list[tuple[str, str, int]],
        *,
        idempotency: tuple[str, str] | None,
        caller_key: str,
    ) -> tuple[int, str]:
        """Store and pay for a batch. `payments`: (payment id, service id, calls). Returns (1, idempotency
        value) when created, (0, stored value) for an existing batch of the same Idempotency-Key; raises
        BatchRefused when a payment cannot cover its items (then nothing changed)."""
        fields = {k: v for k, v in msgspec.structs.asdict(record).items() if v is not None}
        flat_fields = [item for pair in fields.items() for item in pair]
        flat_payments = [x for pid, service, calls in payments for x in (keys.payment_key(pid), service, calls)]
        # kept until every item can have finished (then the completed batch is kept for the retention time)
        ttl_ms = self.deadline_ms * 2 + self.retention_ms
        idem_key, idem_value = idempotency if idempotency else ("", "")
        fan_out_id = "fanout_" + record.id
        outcome, value, index = await self._create(
            keys=[
                keys.batch_key(record.id),
                keys.batch_key(record.id) + ":items",
                idem_key,
                keys.ARQ_JOB_PREFIX + fan_out_id,
                keys.QUEUE_NAME,
                keys.LEDGER,
            ],
            args=[
                record.id,
                record.createdAt,
                iso(record.createdAt),
                ttl_ms,
                idem_value,
                caller_key,
                arq_payload(record.id, record.createdAt, FAN_OUT),
                queue_score(record.createdAt, interactive=True),  # the fan-out itself is quick: it goes first
                len(payments),
                len(fields),
                len(items),
                *flat_payments,
                *flat_fields,
                *(_json.encode(item) for item in items),
            ],
        )
        if int(outcome) == -1:
            raise BatchRefused(value.decode(), int(index))
        return int(outcome), value.decode() if isinstance(value, bytes) else str(value)

    async def get(self, batch_id: str) -> BatchRecord | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(keys.batch_key(batch_id))  # type: ignore[misc]
        if not raw:
            return None
        return msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, BatchRecord, strict=False)

    async def fan_out_next(self, batch_id: str, chunk: int) -> bool:
        """Make the next `chunk` items into jobs. True when every item has been made into a job."""
        key = keys.batch_key(batch_id)
        batch = await self.get(batch_id)
        if batch is None or batch.fanned >= batch.total:
            return True
        raw_items: list[bytes] = await self.redis.lrange(key + ":items", batch.fanned, batch.fanned + chunk - 1)  # type: ignore[misc]
        if not raw_items:  # the items are gone (the batch expired): nothing left to make
            return True
        now = now_ms()
        args: list[Any] = []
        for raw in raw_items:
            record = self._job_for(batch, _item_decoder.decode(raw), now)
            fields = {k: v for k, v in msgspec.structs.asdict(record).items() if v is not None}
            args += [record.id, arq_payload(record.id, now), queue_score(now, interactive=False)]
            args += [record.deadline - now + self.retention_ms, len(fields)]
            args += [item for pair in fields.items() for item in pair]
        fanned = await self._fan_out(
            keys=[key, keys.QUEUE_NAME, keys.LEDGER],
            args=[
                batch.fanned,
                now,
                iso(now),
                self.retention_ms,
                keys.JOBS_DONE_CHANNEL,
                _json.encode(CANCELED_BEFORE_RUN),
                len(raw_items),
                *args,
            ],
        )
        return int(fanned) >= batch.total

    def _job_for(self, batch: BatchRecord, item: BatchItem, now: int) -> JobRecord:
        return JobRecord(
            id=new_job_id(now),
            service=item.service,
            action=item.action,
            owner=batch.owner,
            input=bytes(item.input).decode(),
            requestId=batch.requestId,
            createdAt=now,
            deadline=now + self.deadline_ms,
            status="queued",
            tenant=item.tenant,
            paymentId=item.payment_id or None,
            paymentKind="token" if item.payment_id else None,
            batch=batch.id,
            customId=item.custom_id,
            webhook=batch.webhook if batch.jobEvents else None,
            events=batch.jobEvents or None,
        )

    async def request_cancel(self, batch_id: str) -> str:
        status = await self._cancel(keys=[keys.batch_key(batch_id)])
        return status.decode() if isinstance(status, bytes) else str(status)

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
        requestId="",
        createdAt=0,
        deadline=0,
        status=status,  # type: ignore[arg-type]
        paymentId=payment_id,
        paymentKind=kind,
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
