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
    request: web.Request,
    service: Service,
    params: dict[str, Any],
    payment: PaymentInput,
    *,
    webhook: tuple[str, str] | None = None,
) -> tuple[JobRecord, dict[str, str]]:
    """The job for this call (new, or the one its Idempotency-Key already made) and the headers to answer with
    (`PAYMENT-RESPONSE` after an inline x402 payment). `params` must already be validated; `webhook`: (url,
    events) already checked."""
    encoded_input = msgspec.json.encode(params)
    caller = await identify(request)
    if webhook is not None and caller.api_key is None and payment.token is None:
        raise errors.BadRequest("webhooks are signed with your client's secret: send an API key or a payment token")
    idempotency = None
    if payment.idempotency_key is not None:
        scope = idempotency_scope(request, caller, service, payment)
        idempotency = _idempotency(payment.idempotency_key, scope, service, encoded_input)
    replay = await _idempotent_replay(request, idempotency) if idempotency else None  # a retry is not paid again
    if replay is not None:
        record, headers = replay, {}
    else:
        charge = await charge_for(request, service, payment)
        record = await submit(request, service, encoded_input, charge, idempotency, webhook=webhook)
        headers = dict(charge.headers)
    structlog.contextvars.bind_contextvars(job_id=record.id)
    return record, headers


async def submit(
    request: web.Request,
    service: Service,
    encoded_input: bytes,
    charge: Charge,
    idempotency: tuple[str, str] | None,
    *,
    webhook: tuple[str, str] | None = None,
) -> JobRecord:
    """Create and enqueue the job, paying with `charge` in the same step, or return the existing one for a
    repeated Idempotency-Key (then nothing is charged). `idempotency`: (Redis key, body fingerprint)."""
    settings = request.app[keys.SETTINGS]
    store = request.app[keys.JOBS]
    owner = charge.owner
    created_ms = now_ms()
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
        webhook=webhook[0] if webhook else None,
        events=webhook[1] if webhook else None,
    )
    stored_value = (idempotency[0], f"{record.id} {idempotency[1]}") if idempotency else None
    outcome, stored = await store.create(
        record,
        arq_payload(record.id, created_ms),
        idempotency=stored_value,
        caller_key=charge.caller_key,
        tenant_from_payment=charge.tenant_from_payment,
    )
    if charge.paid_with == "token":
        request.app[keys.METRICS].payments.labels("token", "refused" if outcome == -1 else "consumed").inc()
    if outcome == -1:
        raise await refused(request, service, stored)
    if outcome == 1 or idempotency is None:  # a new job (counted as a call; a replayed Idempotency-Key is not)
        return record
    if charge.paid_with == "x402":  # lost a race with the same Idempotency-Key: the settled call stays unspent
        log.warning("idempotent replay after inline payment", payment_id=charge.payment_id)
    return await _existing_for_key(request, stored, idempotency[1])


async def _idempotent_replay(request: web.Request, idempotency: tuple[str, str]) -> JobRecord | None:
    """The job an Idempotency-Key already created for this caller, looked up before anything is charged."""
    stored: bytes | None = await request.app[keys.REDIS].get(idempotency[0])
    if stored is None:
        return None
    return await _existing_for_key(request, stored.decode(), idempotency[1])


def _idempotency(key: str, owner: str, service: Service, encoded_input: bytes) -> tuple[str, str]:
    """(Redis key, fingerprint of the call) for an Idempotency-Key of `owner`."""
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise errors.BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters")
    fingerprint = hashlib.sha256(service.id.encode() + b"\0" + encoded_input).hexdigest()
    return idempotency_key(owner, key), fingerprint


async def _existing_for_key(request: web.Request, stored: str, fingerprint: str) -> JobRecord:
    stored_job, _, stored_fingerprint = stored.partition(" ")
    if stored_fingerprint != fingerprint:
        raise errors.IdempotencyMismatch("this Idempotency-Key was already used with a different request body")
    existing = await request.app[keys.JOBS].get(stored_job)
    if existing is None:
        raise errors.Gone("the job for this Idempotency-Key has expired")
    structlog.contextvars.bind_contextvars(idempotent_replay=True)
    return existing
