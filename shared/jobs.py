"""Jobs: the record of one tool call, its state machine, and the store both the API and the workers use.

A job lives in one Redis hash (`shared.keys.job_key`); every transition is one Lua script, so a cancel and a start
can never both win. The states, retention, and 410 versus 404: docs/architecture.md, "State machines".
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from shared import keys
from shared.clock import iso, iso_ms, monotonic
from shared.failures import Failure, Kind, ended_failure, failure, kind_of_code
from shared.keys import SETTLING_DUE, registered
from shared.lua import pack
from shared.quality import QualityStore

JobStatus = Literal["settling", "queued", "running", "succeeded", "failed", "canceled", "expired"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled", "expired"})
ANONYMOUS = "anon"
JOB_ID_PREFIX = "job_"
_json = msgspec.json.Encoder()


# Queue order: arq takes the lowest scores first, and a score is normally the time a job may start. Single calls
# are queued this far "in the past", so they always go before batch items (queued at their real time): a
# 10,000-item batch never makes someone's single call wait behind it. arq's `score <= now` test still holds.
INTERACTIVE_LEAD_MS = 86_400_000
# FINISH_JOB announces a finished job with its fields when they add up to at most this (api/waiter.py uses them)
ANNOUNCE_MAX_BYTES = 16_384


def queue_score(created_ms: int, *, interactive: bool) -> int:
    return created_ms - INTERACTIVE_LEAD_MS if interactive else created_ms


class JobError(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """A job's error. `kind` (shared/failures.py) says what failed, and so the answer's HTTP status and whether a
    retry may help (`failure`); build one with `of`. An error written without a kind (stored before kinds
    existed, or built by code that names none) gets the kind its code implies when it is built or decoded."""

    code: str
    message: str
    retryable: bool
    kind: Kind | None = None  # set by __post_init__ whenever it is missing: never None once built
    upstream_request_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind is None:
            msgspec.structs.force_setattr(self, "kind", kind_of_code(self.code, retryable=self.retryable))

    @classmethod
    def of(cls, kind: Kind, code: str, message: str, *, upstream_request_id: str | None = None) -> JobError:
        return cls(
            code=code,
            message=message,
            retryable=failure(kind).retryable,
            kind=kind,
            upstream_request_id=upstream_request_id,
        )

    @property
    def failure(self) -> Failure:
        return failure(self.kind or kind_of_code(self.code, retryable=self.retryable))


EXPIRED = JobError.of("expired", "job_expired", "the job's deadline passed before it ran")
CANCELED_BEFORE_RUN = JobError.of("canceled", "canceled", "the job was canceled before it ran")


class JobRecord(msgspec.Struct, rename="camel", frozen=True, kw_only=True):
    """The hash as stored: its field names are the attributes' in camelCase (`rename`)."""

    id: str
    service: str
    action: str
    owner: str
    input: str
    request_id: str
    created_at: int
    deadline: int
    status: JobStatus
    attempts: int = 0
    started_at: int | None = None
    finished_at: int | None = None
    retry_at: int | None = None
    result: str | None = None
    error: str | None = None
    last_error: str | None = None
    cancel: str | None = None
    tenant: str = ANONYMOUS
    payment_id: str | None = None
    payment_kind: str | None = None  # 'token' (X-Payment-Token) or 'x402' (paid inline with PAYMENT-SIGNATURE)
    refunded: str | None = None  # why the paid call was given back: failed upstream, expired, canceled
    batch: str | None = None  # the batch this job is an item of, and the item's customId
    custom_id: str | None = None
    webhook: str | None = None  # where its events go, and which (comma-separated event names: shared/webhooks.py)
    events: str | None = None

    def payment_key(self) -> str:
        return keys.payment_key(self.payment_id) if self.payment_id else ""

    def job_error(self) -> JobError | None:
        """The final error, or while a retry waits, the error it is retrying."""
        if self.error:
            return msgspec.json.decode(self.error, type=JobError)
        return self.last_job_error() if self.status == "queued" else None

    def last_job_error(self) -> JobError | None:
        return msgspec.json.decode(self.last_error, type=JobError) if self.last_error else None


class JobCharge(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """What the call cost: the payment it used and whether that call was given back."""

    payment_id: str
    paid_with: str
    refunded: bool
    refund_reason: str | None = None
    note: str | None = None
    credit_token: str | None = None  # for a refunded inline x402 payment: the token that now holds the call


class JobView(msgspec.Struct, rename="camel", frozen=True, kw_only=True, omit_defaults=True):
    """A job as clients see it (GET /api/jobs/{jobId}, 202 answers, batch listings). `http_status`: the HTTP
    status the job's tool call answers with: 200 with its result, 202 while it settles, waits or runs, else the
    status of its failure (shared/failures.py), the one the API's answer has."""

    job_id: str
    service_id: str
    status: str
    http_status: int
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
    charge: JobCharge | None = None
    batch_id: str | None = None
    custom_id: str | None = None
    links: dict[str, str] = {}


KEPT_NOTE = "the call was charged: the upstream refused this input, which a retry with the same input cannot fix"


def job_charge(record: JobRecord, credit_token: str | None = None) -> JobCharge | None:
    if not record.payment_id:
        return None
    refunded = record.refunded is not None
    note = None
    if record.status == "failed" and not refunded:
        note = KEPT_NOTE
    elif refunded and record.payment_kind == "x402":
        note = "the paid call was given back as a credit: call this service again with X-Payment-Token: creditToken"
    elif refunded:
        note = "the paid call was given back to the payment token"
    return JobCharge(
        payment_id=record.payment_id,
        paid_with=record.payment_kind or "token",
        refunded=refunded,
        refund_reason=record.refunded,
        note=note,
        credit_token=credit_token if refunded and record.payment_kind == "x402" else None,
    )


def job_view(
    record: JobRecord, *, retention_ms: int, queue_position: int | None = None, credit_token: str | None = None
) -> JobView:
    finished = record.status in TERMINAL
    error = record.job_error()
    return JobView(
        job_id=record.id,
        service_id=record.service,
        status=record.status,
        http_status=answer_status(record.status, error),
        attempts=record.attempts,
        created_at=iso_ms(record.created_at) or "",
        deadline_at=iso_ms(record.deadline) or "",
        started_at=iso_ms(record.started_at),
        finished_at=iso_ms(record.finished_at),
        expires_at=iso_ms(record.finished_at + retention_ms) if finished and record.finished_at else None,
        next_attempt_at=iso_ms(record.retry_at) if record.status == "queued" else None,
        queue_position=queue_position if record.status == "queued" else None,
        result=msgspec.Raw(record.result.encode()) if record.result and record.status == "succeeded" else None,
        error=error,
        charge=job_charge(record, credit_token),
        batch_id=record.batch,
        custom_id=record.custom_id,
        links={"self": f"/api/jobs/{record.id}"},
    )


def answer_status(status: str, error: JobError | None) -> int:
    """The HTTP status of the tool call's answer for a job in `status` (JobView.http_status)."""
    if status == "succeeded":
        return 200
    if status not in TERMINAL:
        return 202
    return ended_failure(status, error.kind if error is not None else None).status


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


class SlotBooking(msgspec.Struct, frozen=True, kw_only=True):
    """The upstream slot START_JOB books for a job that goes running (workers/ratelimit.py makes it): its limiter
    key, the interval between slots and the longest waits, in microseconds (`horizon_us`: a batch item's, applied
    when the job's record says it is one; 0: none)."""

    limiter: str
    interval_us: int
    cap_us: int
    horizon_us: int = 0


class BookedSlot(msgspec.Struct, frozen=True):
    """START_JOB's answer to a SlotBooking: the wait for the slot in us (0: go now; -1: further than the job can
    wait, nothing booked) and the time on the limiter's clock (shared/clock.py `monotonic`) when the answer
    arrived, which the wait counts from (the worker has more to do before it waits: a call late for its slot must
    see that it is)."""

    wait_us: int
    at: float


Started = tuple[str, int, JobRecord | None, BookedSlot | None]


def read_started(reply: list[Any], at: float) -> Started:
    """START_JOB's answer (the script's, or CLAIM's for a job it started), read at `at` (the limiter's clock):
    (status, attempt, the job as the step left it (None when missing), its BookedSlot when one was booked)."""
    booked = BookedSlot(int(reply[3]), at) if len(reply) > 3 else None
    status, attempts, flat = reply[:3]
    record = _record(dict(zip(flat[::2], flat[1::2], strict=True))) if flat else None
    return status.decode(), int(attempts), record, booked


class JobStore:
    """Reads and moves jobs. Holds no state besides the Redis client and the registered scripts; `quality` counts
    the jobs it creates as calls (the API's)."""

    def __init__(self, redis: Redis, *, retention_s: int, quality: QualityStore | None = None) -> None:
        self.redis = redis
        self.retention_ms = retention_s * 1000
        self.quality = quality
        self._enqueue = registered(redis, keys.ENQUEUE_JOB)
        self._start = registered(redis, keys.START_JOB)
        self._finish = registered(redis, keys.FINISH_JOB)
        self._begin_call = registered(redis, keys.BEGIN_CALL)
        self._requeue = registered(redis, keys.REQUEUE_JOB)
        self._cancel = registered(redis, keys.CANCEL_JOB)
        self._cancel_many = registered(redis, keys.CANCEL_JOBS)

    async def create(
        self,
        record: JobRecord,
        *,
        idempotency: tuple[str, str] | None = None,
        caller_key: str = "",
        tenant_from_payment: bool = False,
        settled_intent: str = "",
    ) -> tuple[int, str]:
        """Store and enqueue a job, consuming one call of its payment (if any) in the same step; a job created is
        counted as a call of its service (`quality`, shared/quality.py). `tenant_from_payment`: the job acts for
        the payment's client (`record.tenant` when the payment has none). `settled_intent`: the settlement intent a
        `settling` job waited for; the job is released (queued, its call consumed) once, only while it is still
        settling.

        Returns (1, idempotency value) when created, (0, stored value) for an existing job with the same
        Idempotency-Key (nothing charged), (-1, reason) when the payment cannot pay for it (nothing changed):
        payment_required, token_expired, wrong_service, wrong_client, no_calls_left.
        """
        ttl_ms = record.deadline - record.created_at + self.retention_ms
        fields = {k: v for k, v in msgspec.to_builtins(record).items() if v is not None}
        flat: list[Any] = [item for pair in fields.items() for item in pair]
        idem_key, idem_value = idempotency if idempotency else ("", "")
        outcome, value = await self._enqueue(
            keys=[
                keys.job_key(record.id),
                keys.QUEUE_NAME,
                idem_key,
                record.payment_key(),
                keys.LEDGER,
                *((settled_intent, SETTLING_DUE) if settled_intent else ()),
            ],
            args=[pack(
                id=record.id, score=queue_score(record.created_at, interactive=True), ttl=ttl_ms,
                idempotency=idem_value, service=record.service, caller=caller_key, now=record.created_at,
                at=iso(record.created_at), tenant=record.tenant if tenant_from_payment else "", fields=flat)],
        )  # fmt: skip
        if int(outcome) == 1 and self.quality is not None:
            self.quality.record_call(record.service, record.created_at)
        return int(outcome), value.decode() if isinstance(value, bytes) else str(value)

    async def get(self, job_id: str) -> JobRecord | None:
        raw: dict[bytes, bytes] = await self.redis.hgetall(keys.job_key(job_id))  # type: ignore[misc]
        return _record(raw) if raw else None

    async def cancel_requested(self, job_id: str) -> bool:
        flag: bytes | None = await self.redis.hget(keys.job_key(job_id), "cancel")  # type: ignore[misc]
        return flag == b"1"

    async def begin_call(self, job_id: str) -> bool:
        """Just before an upstream call: False when a cancel was asked for (no call may be made); else True."""
        go: int = await self._begin_call(keys=[keys.job_key(job_id)])
        return go == 1

    async def queue_position(self, record: JobRecord) -> int | None:
        """The job's place on its queue (a batch item's is the batch lane's), None when it is not on one."""
        queue = keys.BATCH_QUEUE_NAME if record.batch else keys.QUEUE_NAME
        rank: int | None = await self.redis.zrank(queue, record.id)
        return rank

    async def start(self, job_id: str, *, min_budget_ms: int, booking: SlotBooking | None = None) -> Started:
        """START_JOB: (status, attempt, the job as it is after the step (None when missing), and for a `booking`
        of a job that went running, its BookedSlot; else None)."""
        slot = dict(interval=booking.interval_us, cap=booking.cap_us, horizon=booking.horizon_us) if booking else {}
        reply = await self._start(
            keys=[keys.job_key(job_id), keys.LEDGER, booking.limiter if booking else ""],
            args=[pack(**self.start_options(now_ms(), min_budget_ms), **slot)],
        )
        return read_started(reply, monotonic())

    def start_options(self, now: int, min_budget_ms: int) -> dict[str, Any]:
        """START_JOB's options but the booking's (CLAIM takes them too, with the ledger's key: workers/queue.py)."""
        return dict(
            now=now, channel=keys.JOBS_DONE_CHANNEL, retention=self.retention_ms, expired=_json.encode(EXPIRED),
            min_budget=min_budget_ms, at=iso(now),
        )  # fmt: skip

    async def succeed(self, record: JobRecord, envelope: dict[str, Any]) -> bool:
        """End the job with its result. True when this step ended it (False: it had ended already)."""
        return await self._finish_with(record, "succeeded", "result", _json.encode(envelope), refund="")

    async def fail(
        self,
        record: JobRecord,
        error: JobError,
        status: JobStatus = "failed",
        *,
        refund: str = "",
    ) -> bool:
        """End the job with an error; a non-empty `refund` reason gives its paid call back (once). True when this
        step ended it."""
        return await self._finish_with(record, status, "error", _json.encode(error), refund=refund)

    async def _finish_with(self, record: JobRecord, status: str, field: str, payload: bytes, *, refund: str) -> bool:
        now = now_ms()
        head = announcement_head(record, status, now, field)
        if len(head) + len(payload) > ANNOUNCE_MAX_BYTES:
            head = b""
        done = await self._finish(
            keys=[keys.job_key(record.id), record.payment_key(), keys.LEDGER],
            args=[pack(
                id=record.id, status=status, now=now, field=field, payload=payload, retention=self.retention_ms,
                channel=keys.JOBS_DONE_CHANNEL, refund=refund, at=iso(now), announce_max=ANNOUNCE_MAX_BYTES,
                head=head, attempts=record.attempts)],
        )  # fmt: skip
        return bool(done)

    async def requeue(self, job_id: str, retry_at_ms: int, error: JobError) -> bool:
        requeued = await self._requeue(keys=[keys.job_key(job_id)], args=[retry_at_ms, _json.encode(error)])
        return bool(requeued)

    async def cancel(self, record: JobRecord) -> str:
        now = now_ms()
        result = await self._cancel(
            keys=[keys.job_key(record.id), keys.QUEUE_NAME, keys.LEDGER],
            args=[now, _json.encode(CANCELED_BEFORE_RUN), self.retention_ms, keys.JOBS_DONE_CHANNEL, iso(now)],
        )  # fmt: skip
        return result.decode() if isinstance(result, bytes) else str(result)

    async def cancel_many(self, job_ids: list[str]) -> tuple[int, int]:
        """Cancel jobs (of a batch): queued ones at once (given back), running ones asked to stop."""
        if not job_ids:
            return 0, 0
        now = now_ms()
        error = _json.encode(CANCELED_BEFORE_RUN)
        canceled, asked = await self._cancel_many(
            keys=[keys.QUEUE_NAME, keys.LEDGER],
            args=[now, error, self.retention_ms, keys.JOBS_DONE_CHANNEL, iso(now), *job_ids],
        )
        return int(canceled), int(asked)


def _record(raw: dict[bytes, bytes]) -> JobRecord:
    return msgspec.convert({k.decode(): v.decode() for k, v in raw.items()}, JobRecord, strict=False)


def announcement_head(record: JobRecord, status: str, now: int, field: str) -> bytes:
    """The job as FINISH_JOB leaves it, but its `field` (the payload, which the announcement carries as it is): the
    fields of `record` (as START_JOB left them) with the new status and finishedAt, without retryAt (deleted)."""
    fields = {name: str(value) for name, value in msgspec.to_builtins(record).items() if value is not None}
    fields.pop("retryAt", None)
    fields.pop(field, None)
    fields["status"], fields["finishedAt"] = status, str(now)
    head: bytes = _json.encode(fields)  # one line: JSON escapes every newline in a string
    return head


def announced_record(data: bytes) -> JobRecord | None:
    """The job FINISH_JOB's announcement carries (what follows the id and its newline), None when it is not one:
    `{fields}`, or `<field>\n{the other fields}\n<the field's value>` (finish_job.lua)."""
    try:
        if data[:1] == b"{":
            fields = msgspec.json.decode(data, type=dict[str, str])
        else:
            field, _, rest = data.partition(b"\n")
            head, newline, payload = rest.partition(b"\n")
            if not newline:
                return None
            fields = msgspec.json.decode(head, type=dict[str, str])
            fields[field.decode()] = payload.decode()
        return msgspec.convert(fields, JobRecord, strict=False)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
