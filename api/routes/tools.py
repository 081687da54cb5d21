"""`POST /api/tools/{id}` (and every legacy id or tool name): validate, pay, enqueue, answer.

Answers: the seed's envelope (200) when the job finishes within the blocking wait (`Prefer: wait=N`, default
30 s, at most 60 s); 202 with the job and `Location` when the wait runs out or with `Prefer: respond-async`;
the job's error with a fitting status when it fails.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from aiohttp import web

from api import keys
from api.identity import identify
from api.jobs_view import answer_for_record, view_for
from api.payment_gate import Charge, charge_for, idempotency_scope, refused
from api.responses import json_response
from shared import errors
from shared.jobs import JobRecord, arq_payload, new_job_id, now_ms
from shared.keys import idempotency_key
from shared.models import Service

log = structlog.get_logger("api.tools")
routes = web.RouteTableDef()

_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Preference:
    respond_async: bool
    wait_s: float
    applied: str


def parse_prefer(header: str, *, default_s: float, max_s: float) -> Preference:
    lowered = header.lower()
    match = _PREFER_WAIT.search(lowered)
    if match:
        wait_s = min(float(match.group(1)), max_s)
        return Preference(respond_async=False, wait_s=wait_s, applied=f"wait={wait_s:g}")
    if "respond-async" in lowered:
        return Preference(respond_async=True, wait_s=0, applied="respond-async")
    return Preference(respond_async=False, wait_s=default_s, applied="")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    content_type = request.content_type
    json_like = content_type in ("application/json", "application/octet-stream", "") or content_type.endswith("+json")
    if request.can_read_body and not json_like:
        raise errors.UnsupportedMediaType("send the tool's parameters as application/json")
    raw = await request.read()
    try:
        body = msgspec.json.decode(raw) if raw.strip() else {}
    except msgspec.DecodeError:
        raise errors.InvalidJSON("request body must be valid JSON") from None
    if not isinstance(body, dict):
        raise errors.InvalidJSON("request body must be a JSON object of the tool's parameters")
    return body


@routes.post("/api/tools/{tool}")
async def call_tool(request: web.Request) -> web.Response:
    service = _service(request)
    params = await read_json_object(request)
    params = request.app[keys.VALIDATORS].validate(service.id, params)
    settings = request.app[keys.SETTINGS]
    prefer_header = request.headers.get("Prefer", "")
    prefer = parse_prefer(prefer_header, default_s=settings.wait_default_s, max_s=settings.wait_max_s)
    replay = await _idempotent_replay(request, service, params)  # a retry of a paid call is not paid again
    if replay is not None:
        record, headers = replay, {}
    else:
        charge = await charge_for(request, service)
        record = await submit(request, service, params, charge)
        headers = dict(charge.headers)
    structlog.contextvars.bind_contextvars(job_id=record.id)
    if prefer.applied:
        headers["Preference-Applied"] = prefer.applied
    if prefer.respond_async:
        return await accepted(request, record, headers)
    final = await request.app[keys.WAITER].wait(record.id, prefer.wait_s)
    return await answer_for_record(request, final or record, headers, blocking=True)


async def accepted(request: web.Request, record: JobRecord, headers: dict[str, str]) -> web.Response:
    view = await view_for(request, record)
    return json_response(view, status=202, headers={**headers, "Location": view.links["self"]})


def _service(request: web.Request) -> Service:
    key = request.match_info["tool"]
    service = request.app[keys.CATALOG].resolve(key)
    if service is None:
        raise errors.ServiceNotFound(f"tool {key[:100]!r} not found; see /api/catalog")
    structlog.contextvars.bind_contextvars(service_id=service.id)
    return service


async def submit(request: web.Request, service: Service, params: dict[str, Any], charge: Charge) -> JobRecord:
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
    idempotency = _idempotency(request, charge.idempotency_scope, service, encoded_input, record.id)
    outcome, stored = await store.create(
        record, arq_payload(record.id, created_ms), idempotency=idempotency, caller_key=charge.caller_key
    )
    if outcome == -1:
        raise await refused(request, service, stored)
    if outcome == 1 or idempotency is None:
        return record
    if charge.paid_with == "x402":  # lost a race with the same Idempotency-Key: the settled call stays unspent
        log.warning("idempotent replay after inline payment", payment_id=charge.payment_id)
    return await _existing_for_key(request, stored, idempotency[1])


async def _idempotent_replay(request: web.Request, service: Service, params: dict[str, Any]) -> JobRecord | None:
    """The job an Idempotency-Key already created for this caller, looked up before anything is charged."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    scope = idempotency_scope(request, await identify(request), service)
    encoded_input = msgspec.json.encode(params)
    idempotency = _idempotency(request, scope, service, encoded_input, "")
    if idempotency is None:
        return None
    stored: bytes | None = await request.app[keys.REDIS].get(idempotency[0])
    if stored is None:
        return None
    return await _existing_for_key(request, stored.decode(), idempotency[1])


def _idempotency(
    request: web.Request, owner: str, service: Service, encoded_input: bytes, job_id: str
) -> tuple[str, str] | None:
    key = request.headers.get("Idempotency-Key")
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
