"""MCP `tools/list` and `tools/call`: every catalog service as a tool, called exactly like `POST /api/tools/{id}`.

A call validates its arguments, pays (`paymentToken` argument, or an x402 PaymentPayload in
`params._meta["x402/payment"]`), starts the job (api/callcore/calls.py) and waits for it; asked for a task
(api/mcp_tasks.py), it answers the task at once instead. Its results are api/mcp_results.py's; the tool's
`outputSchema` admits each of them (success, pending job, payment required, error), as clients that check error
results against it (the TypeScript SDK) need.

An inline x402 payment's settlement comes back in `result._meta["x402/payment-response"]`. With a progress token
the call is answered over SSE, with a `notifications/progress` at the start and at every change of the job's
state. `Prefer: wait=N` / `respond-async` on the POST shortens the wait, as on HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog
from aiohttp import web
from x402.schemas import PaymentPayload

from api import appkeys, errors
from api.call_adapter import start_call
from api.callcore.gate import PaymentInput
from api.callcore.x402_payment import PaymentRejected, from_object
from api.mcp_protocol import INVALID_PARAMS, EventStream, RpcError, ToolCall
from api.mcp_results import describe, error_result, job_result, payment_required_result
from api.mcp_tasks import created, wants_task
from api.ratelimits import OWS
from api.request_options import checked_webhook, parse_prefer
from shared.jobs import TERMINAL, JobRecord
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

PAYMENT_REQUIRED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Payment required (isError): the x402 PaymentRequired (x402Version, resource, accepts) with the "
    "gateway's error, code, message and a pending payment. Sign one of `accepts` and retry with the PaymentPayload "
    "in params._meta['x402/payment'].",
    "properties": {
        "x402Version": {"type": "integer"},
        "resource": {"type": "object"},
        "accepts": {"type": "array", "items": {"type": "object"}},
        "extensions": {"type": "object"},
        "error": {"type": "string"},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "payment": {"type": "object"},
    },
    "required": ["x402Version", "accepts", "error", "code"],
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A failed call (isError): the same body as the HTTP error answer; `job` when a job ran.",
    "properties": {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "details": {},
        "job": {"type": "object"},
    },
    "required": ["error", "code"],
}

_encoder = msgspec.json.Encoder()


class CallParams(msgspec.Struct, frozen=True):
    name: str
    arguments: dict[str, Any] | None = None
    meta: dict[str, Any] = msgspec.field(default_factory=dict, name="_meta")


# ---------------------------------------------------------------- tools/list


async def list_tools(call: ToolCall) -> dict[str, Any]:
    if call.params.get("cursor") is not None:
        raise RpcError(INVALID_PARAMS, "invalid cursor: the tool list has a single page")
    tasks = not call.envelope.modern
    result: dict[str, Any] = {"tools": [tool_descriptor(s, tasks=tasks) for s in call.request.app[appkeys.CATALOG]]}
    return {**result, **LIST_CACHE_HINT} if call.envelope.modern else result


def tool_descriptor(service: Service, *, tasks: bool = False) -> dict[str, Any]:
    """One tool; `tasks`: the 2025-11-25 declaration that it may be called as a task (2026-07-28 has none)."""
    descriptor: dict[str, Any] = {
        "name": service.discovery.tool_name,
        "title": service.name,
        "description": f"{service.description_for_model}\n\n{_terms(service)}",
        "inputSchema": input_schema(service),
        "outputSchema": output_schema(service),
        "annotations": tool_annotations(service),
    }
    if tasks:
        descriptor["execution"] = {"taskSupport": "optional"}
    return descriptor


def output_schema(service: Service) -> dict[str, Any]:
    """Every structuredContent a call can answer with: the result, the job still pending, payment required, an
    error (clients such as the TypeScript SDK check error results against it too)."""
    return {"type": "object", "anyOf": [service.output_schema, PENDING_SCHEMA, PAYMENT_REQUIRED_SCHEMA, ERROR_SCHEMA]}


_WRITES = ("Add", "BatchAdd", "Create", "Delete", "Update")  # the face database and template actions that change state
_OTHER_WRITES = frozenset({"GenRealPersonVerificationToken"})  # starts a verification at Alibaba


def tool_annotations(service: Service) -> dict[str, Any]:
    """MCP's behaviour hints. Every tool calls Alibaba Cloud and may fetch the image URLs it is given (open
    world); analyses change nothing there (read-only, though each call is paid); deletes and updates destroy."""
    action = service.upstream.action
    writes = action.startswith(_WRITES) or action in _OTHER_WRITES
    destructive = action.startswith(("Delete", "Update"))
    hints: dict[str, Any] = {"title": service.name, "readOnlyHint": not writes, "openWorldHint": True}
    if writes:
        hints["destructiveHint"] = destructive
        hints["idempotentHint"] = service.idempotent or action.startswith("Delete")
    else:
        hints["idempotentHint"] = True
    return hints


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
    service = request.app[appkeys.CATALOG].resolve(params.name)
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
        validated = request.app[appkeys.VALIDATORS].validate(service.id, arguments)
        payment = PaymentInput(token=token.strip(OWS) if token is not None else None, x402=_x402(params.meta))
        started = await start_call(request, service, validated, payment, webhook=webhook)
    except errors.PaymentRequired as exc:
        structlog.contextvars.bind_contextvars(mcp_outcome="payment_required")
        return payment_required_result(exc)
    except errors.Server402Error as exc:
        structlog.contextvars.bind_contextvars(mcp_outcome=exc.code)
        return error_result(exc.body(), exc.message)
    meta: dict[str, Any] = {}
    if started.settled is not None:
        meta[X402_RESPONSE_META] = started.settled.model_dump(mode="json", by_alias=True, exclude_none=True)
    if wants_task(call):
        return await created(call, started.record, meta)
    settings = request.app[appkeys.SETTINGS]
    wait = parse_prefer(
        request.headers.get("Prefer", ""), default_s=settings.jobs.wait_max_s, max_s=settings.jobs.wait_max_s
    )
    record = await follow(request, started.record, wait.wait_s, call.stream)
    structlog.contextvars.bind_contextvars(mcp_outcome=record.status)
    result = await job_result(request, record)
    if meta:
        result["_meta"] = meta
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
    waiter = request.app[appkeys.WAITER]
    if stream is None:
        return await waiter.wait(record.id, wait_s, current=record) or record
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    reported: tuple[str, int] | None = None
    while True:
        state = (record.status, record.attempts)
        if record.status not in TERMINAL and state != reported:
            await stream.progress(await describe(request, record))
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
