"""MCP `tools/list` and `tools/call`: every catalog service as a tool, called exactly like `POST /api/tools/{id}`.

A call validates its arguments, pays (`paymentToken` argument, or an x402 PaymentPayload in
`params._meta["x402/payment"]`), starts the job (api/calls.py) and waits for it:

    succeeded           structuredContent: the seed's envelope (the HTTP 200 body), also as JSON text
    still running       structuredContent: the job (jobId, status, links.self) and a note to poll /api/jobs/{id}
    bad arguments, refused access, failed job     isError, structuredContent: the HTTP error body
    payment required    isError, structuredContent: the x402 PaymentRequired (x402Version, resource, accepts)
                        merged with the seed's body (error, code, message, payment); the same JSON as text

An inline x402 payment's settlement comes back in `result._meta["x402/payment-response"]`. With a progress token
the call is answered over SSE, with a `notifications/progress` at the start and at every change of the job's
state. `Prefer: wait=N` / `respond-async` on the POST shortens the wait, as on HTTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from aiohttp import web
from x402.http.utils import decode_payment_required_header
from x402.schemas import PaymentPayload

from api import keys
from api.call_adapter import start_call
from api.callcore.gate import PaymentInput
from api.callcore.x402_payment import PaymentRejected, from_object
from api.jobs_view import view_for
from api.mcp_protocol import INVALID_PARAMS, Envelope, EventStream, RpcError
from api.routes.tools import parse_prefer
from api.routes.webhooks import checked_webhook
from shared import errors
from shared.jobs import TERMINAL, JobError, JobRecord
from shared.models import Service

PAYMENT_TOKEN_ARG = "paymentToken"
WEBHOOK_ARGS: dict[str, Any] = {
    "webhook": {"type": "string", "description": "Optional: a URL that receives the signed result (Standard "
                "Webhooks; needs an API key or paymentToken, whose secret is at GET /api/webhooks/secret)."},
    "webhookEvents": {"type": "array", "items": {"type": "string"},
                      "description": "Events for the webhook: job.settling, job.started, job.succeeded, job.failed, "
                      "job.canceled, job.expired; default job.completed (every finished state)."},
}  # fmt: skip
X402_PAYMENT_META = "x402/payment"
X402_RESPONSE_META = "x402/payment-response"
PROGRESS_POLL_S = 0.5  # how often a streamed call re-reads its job for a change of state
LIST_CACHE_HINT: dict[str, Any] = {"ttlMs": 300_000, "cacheScope": "public"}  # the catalog is fixed per process

PENDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The job, still settling its payment, queued or running when the wait ended: poll links.self "
    "(GET /api/jobs/{jobId}).",
    "properties": {
        "jobId": {"type": "string"},
        "serviceId": {"type": "string"},
        "status": {"enum": ["settling", "queued", "running"]},
        "links": {"type": "object", "properties": {"self": {"type": "string"}}},
        "note": {"type": "string"},
    },
    "required": ["jobId", "status", "links", "note"],
}

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class ToolCall:
    """What a method handler gets: the HTTP request, the protocol era, the params and the answer's stream."""

    request: web.Request
    envelope: Envelope
    params: dict[str, Any]
    stream: EventStream | None


class CallParams(msgspec.Struct, frozen=True):
    name: str
    arguments: dict[str, Any] | None = None
    meta: dict[str, Any] = msgspec.field(default_factory=dict, name="_meta")


# ---------------------------------------------------------------- tools/list


async def list_tools(call: ToolCall) -> dict[str, Any]:
    if call.params.get("cursor") is not None:
        raise RpcError(INVALID_PARAMS, "invalid cursor: the tool list has a single page")
    result: dict[str, Any] = {"tools": [tool_descriptor(service) for service in call.request.app[keys.CATALOG]]}
    return {**result, **LIST_CACHE_HINT} if call.envelope.modern else result


def tool_descriptor(service: Service) -> dict[str, Any]:
    return {
        "name": service.discovery.tool_name,
        "title": service.name,
        "description": f"{service.description_for_model}\n\n{_terms(service)}",
        "inputSchema": input_schema(service),
        "outputSchema": {"type": "object", "anyOf": [service.output_schema, PENDING_SCHEMA]},
    }


def input_schema(service: Service) -> dict[str, Any]:
    token = {
        "type": "string",
        "description": "A payment token for this tool (POST /api/payments); omit it to pay with x402 instead.",
    }
    return {**service.input_schema, "properties": {**service.input_schema.get("properties", {}),
                                                   PAYMENT_TOKEN_ARG: token, **WEBHOOK_ARGS}}  # fmt: skip


def _terms(service: Service) -> str:
    pricing = service.pricing
    if pricing.amount_cents == 0:
        terms = "Free: no payment needed."
    else:
        terms = (
            f"Price: {pricing.amount_cents / 100:.2f} {pricing.currency} per call. An unpaid call returns isError "
            "with x402 payment terms (structuredContent.accepts): retry with the signed PaymentPayload in "
            f"params._meta[{X402_PAYMENT_META!r}], or pass {PAYMENT_TOKEN_ARG} (bought with POST /api/payments)."
        )
    if service.requires_api_key:
        terms += " Requires an API key (Authorization: Bearer <key> on the MCP connection)."
    return terms + " A call still running when the wait ends returns its jobId: poll GET /api/jobs/{jobId}."


# ---------------------------------------------------------------- tools/call


async def call_tool(call: ToolCall) -> dict[str, Any]:
    try:
        params = msgspec.convert(call.params, CallParams)
    except msgspec.ValidationError as exc:
        raise RpcError(INVALID_PARAMS, f"invalid tools/call params: {exc}") from None
    request = call.request
    service = request.app[keys.CATALOG].resolve(params.name)
    if service is None:
        raise RpcError(INVALID_PARAMS, f"unknown tool {params.name[:100]!r}; see tools/list")
    structlog.contextvars.bind_contextvars(service_id=service.id)
    arguments = dict(params.arguments or {})
    token = arguments.pop(PAYMENT_TOKEN_ARG, None)
    webhook_url, webhook_events = arguments.pop("webhook", None), arguments.pop("webhookEvents", None)
    try:
        if token is not None and not isinstance(token, str):
            raise errors.ValidationFailed(f"{PAYMENT_TOKEN_ARG} must be a string")
        webhook = checked_webhook(request, webhook_url, webhook_events)
        validated = request.app[keys.VALIDATORS].validate(service.id, arguments)
        payment = PaymentInput(token=token.strip() if token is not None else None, x402=_x402(params.meta))
        started = await start_call(request, service, validated, payment, webhook=webhook)
    except errors.PaymentRequired as exc:
        structlog.contextvars.bind_contextvars(mcp_outcome="payment_required")
        return payment_required_result(exc)
    except errors.Server402Error as exc:
        structlog.contextvars.bind_contextvars(mcp_outcome=exc.code)
        return error_result(exc.body(), exc.message)
    settings = request.app[keys.SETTINGS]
    wait = parse_prefer(request.headers.get("Prefer", ""), default_s=settings.wait_max_s, max_s=settings.wait_max_s)
    record = await follow(request, started.record, wait.wait_s, call.stream)
    structlog.contextvars.bind_contextvars(mcp_outcome=record.status)
    result = await job_result(request, record)
    if started.settled is not None:
        settled = started.settled.model_dump(mode="json", by_alias=True, exclude_none=True)
        result["_meta"] = {X402_RESPONSE_META: settled}
    return result


def _x402(meta: dict[str, Any]) -> PaymentPayload | PaymentRejected | None:
    """`_meta["x402/payment"]` (a PaymentPayload object, or its JSON text), decoded; None when absent."""
    payment = meta.get(X402_PAYMENT_META)
    if payment is None:
        return None
    try:
        return from_object(payment)
    except PaymentRejected as exc:
        return exc


async def follow(request: web.Request, record: JobRecord, wait_s: float, stream: EventStream | None) -> JobRecord:
    """The job once finished, or as it stands after `wait_s`; with a stream, reporting each change of state."""
    waiter = request.app[keys.WAITER]
    if stream is None:
        return await waiter.wait(record.id, wait_s, current=record) or record
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    reported: tuple[str, int] | None = None
    while True:
        state = (record.status, record.attempts)
        if record.status not in TERMINAL and state != reported:
            await stream.progress(await _describe(request, record))
            reported = state
        else:
            await stream.keepalive()
        remaining = deadline - loop.time()
        if record.status in TERMINAL or remaining <= 0 or stream.closed:
            return record
        latest = await waiter.wait(record.id, min(remaining, PROGRESS_POLL_S))
        if latest is None:  # gone (expired): answer with what we last saw
            return record
        record = latest


async def _describe(request: web.Request, record: JobRecord) -> str:
    if record.status == "running":
        return f"running (attempt {max(record.attempts, 1)})"
    if record.status == "settling":
        return "settling its x402 payment (the facilitator's answer is awaited)"
    retrying = record.last_error()
    if retrying is not None:
        return f"queued for a retry after {retrying.code}"
    position = await request.app[keys.JOBS].queue_position(record.id)
    return f"queued (position {position + 1})" if position is not None else "queued"


# ---------------------------------------------------------------- results


async def job_result(request: web.Request, record: JobRecord) -> dict[str, Any]:
    if record.status == "succeeded" and record.result is not None:
        return {
            "content": [{"type": "text", "text": record.result}],
            "structuredContent": msgspec.Raw(record.result.encode()),
        }
    view = await view_for(request, record)
    if record.status in ("settling", "queued", "running"):
        pending: dict[str, Any] = msgspec.to_builtins(view)
        pending["note"] = (
            f"the job is still {record.status}: poll GET {view.links['self']} (with the same API key or payment "
            "token) for its result"
        )
        return {"content": [{"type": "text", "text": _encoder.encode(pending).decode()}], "structuredContent": pending}
    error = record.job_error() or JobError(code="failed", message="the job failed", retryable=False)
    note = f" ({view.charge.note})" if view.charge is not None and view.charge.note else ""
    body = msgspec.to_builtins({"error": error.message, "code": error.code, "job": view})
    return error_result(body, f"{error.message}{note}")


def error_result(body: dict[str, Any], message: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": message}], "structuredContent": body, "isError": True}


def payment_required_result(exc: errors.PaymentRequired) -> dict[str, Any]:
    """The x402 MCP transport's tool-result binding: PaymentRequired in structuredContent and as JSON text."""
    structured: dict[str, Any] = {}
    header = exc.headers().get("PAYMENT-REQUIRED")
    if header is not None:
        required = decode_payment_required_header(header)
        structured = required.model_dump(mode="json", by_alias=True, exclude_none=True)
    structured.update(exc.body())
    text = _encoder.encode(structured).decode()
    return {"content": [{"type": "text", "text": text}], "structuredContent": structured, "isError": True}
