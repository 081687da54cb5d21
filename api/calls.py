"""Starting a tool call, shared by `POST /api/tools/{id}` and MCP `tools/call`: replay an Idempotency-Key,
pay (api/payment_gate.py), create and enqueue the job with its payment consumed in the same step."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import structlog
from aiohttp import web

from api import keys
from api.identity import identify
from api.payment_gate import Charge, PaymentInput, charge_for, idempotency_scope, refused
from shared import errors
from shared.jobs import JobRecord, arq_payload, new_job_id, now_ms
from shared.keys import idempotency_key
from shared.models import Service

log = structlog.get_logger("api.calls")
MAX_IDEMPOTENCY_KEY = 255


async def start_call(
    request: web.Request, service: Service, params: dict[str, Any], payment: PaymentInput
) -> tuple[JobRecord, dict[str, str]]:
    """The job for this call (new, or the one its Idempotency-Key already made) and the headers to answer with
    (`PAYMENT-RESPONSE` after an inline x402 payment). `params` must already be validated."""
    replay = await _idempotent_replay(request, service, params, payment)  # a retry is not paid again
    if replay is not None:
        record, headers = replay, {}
    else:
        charge = await charge_for(request, service, payment)
        record = await submit(request, service, params, charge, payment)
        headers = dict(charge.headers)
    structlog.contextvars.bind_contextvars(job_id=record.id)
    return record, headers


async def submit(
    request: web.Request, service: Service, params: dict[str, Any], charge: Charge, payment: PaymentInput
) -> JobRecord:
    """Create and enqueue the job, paying with `charge` in the same step, or return the existing one for a
    repeated Idempotency-Key (then nothing is charged)."""
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.JOBS]
    owner = charge.owner
    created_ms = now_ms()
    encoded_input = msgspec.json.encode(params)
    record = JobRecord(
        id=new_job_id(created_ms),
        service=service.id,
        action=service.upstream.action,
        owner=owner,
        input=encoded_input.decode(),
        requestId=request[keys.REQUEST_ID],
        createdAt=created_ms,
        deadline=created_ms + int(settings.job_deadline_s * 1000),
        status="queued",
        tenant=charge.tenant,
        paymentId=charge.payment_id,
        paymentKind=charge.paid_with,
    )
    idempotency = _idempotency(payment.idempotency_key, charge.idempotency_scope, service, encoded_input, record.id)
    outcome, stored = await store.create(
        record, arq_payload(record.id, created_ms), idempotency=idempotency, caller_key=charge.caller_key
    )
    if charge.paid_with == "token":
        request.app[keys.METRICS].payments.labels("token", "refused" if outcome == -1 else "consumed").inc()
    if outcome == -1:
        raise await refused(request, service, stored)
    if outcome == 1 or idempotency is None:  # a new job (a replayed Idempotency-Key is not counted as a call)
        await request.app[keys.QUALITY].record_call(service.id)
        return record
    if charge.paid_with == "x402":  # lost a race with the same Idempotency-Key: the settled call stays unspent
        log.warning("idempotent replay after inline payment", payment_id=charge.payment_id)
    return await _existing_for_key(request, stored, idempotency[1])


async def _idempotent_replay(
    request: web.Request, service: Service, params: dict[str, Any], payment: PaymentInput
) -> JobRecord | None:
    """The job an Idempotency-Key already created for this caller, looked up before anything is charged."""
    if payment.idempotency_key is None:
        return None
    scope = idempotency_scope(request, await identify(request), service, payment)
    encoded_input = msgspec.json.encode(params)
    idempotency = _idempotency(payment.idempotency_key, scope, service, encoded_input, "")
    if idempotency is None:
        return None
    stored: bytes | None = await request.app[keys.REDIS].get(idempotency[0])
    if stored is None:
        return None
    return await _existing_for_key(request, stored.decode(), idempotency[1])


def _idempotency(
    key: str | None, owner: str, service: Service, encoded_input: bytes, job_id: str
) -> tuple[str, str] | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise errors.BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
    fingerprint = hashlib.sha256(service.id.encode() + b"\0" + encoded_input).hexdigest()
    return idempotency_key(owner, key), f"{job_id} {fingerprint}"


async def _existing_for_key(request: web.Request, stored: str, wanted: str) -> JobRecord:
    stored_job, _, stored_fingerprint = stored.partition(" ")
    if stored_fingerprint != wanted.partition(" ")[2]:
        raise errors.IdempotencyMismatch("this Idempotency-Key was already used with a different request body")
    existing = await request.app[keys.JOBS].get(stored_job)
    if existing is None:
        raise errors.Gone("the job for this Idempotency-Key has expired")
    structlog.contextvars.bind_contextvars(idempotent_replay=True)
    return existing
