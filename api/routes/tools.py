"""`POST /api/tools/{id}` (and every legacy id or tool name): validate, pay, enqueue, answer.

Answers: the seed's envelope (200) when the job finishes within the blocking wait (`Prefer: wait=N`, default
30 s, at most 60 s); 202 with the job and `Location` when the wait runs out or with `Prefer: respond-async`;
the job's error with a fitting status when it fails.
"""

from __future__ import annotations

import redis.exceptions
import structlog
from aiohttp import web

from api import appkeys, errors
from api.call_adapter import payment_from_headers, settle_headers, start_call
from api.identity import call_context
from api.jobs_view import answer_for_record, view_for
from api.request_body import read_json_object
from api.request_options import call_webhook, parse_prefer
from api.responses import json_response
from shared.jobs import JobRecord, job_view
from shared.models import Service

routes = web.RouteTableDef()
log = structlog.get_logger("api.tools")


@routes.post("/api/tools/{tool}")
async def call_tool(request: web.Request) -> web.Response:
    service = _service(request)
    params = await read_json_object(request)
    payment = payment_from_headers(request)
    if not params and payment.token is None and payment.x402 is None:  # a discovery probe: the terms first
        request.app[appkeys.CORE].probe(await call_context(request), service)
    params = request.app[appkeys.VALIDATORS].validate(service.id, params)
    settings = request.app[appkeys.SETTINGS]
    prefer_header = request.headers.get("Prefer", "")
    prefer = parse_prefer(prefer_header, default_s=settings.jobs.wait_default_s, max_s=settings.jobs.wait_max_s)
    webhook = call_webhook(request)
    started = await start_call(request, service, params, payment, webhook=webhook)
    record, headers = started.record, settle_headers(started.settled)
    if prefer.applied:
        headers["Preference-Applied"] = prefer.applied
    try:
        if prefer.respond_async:
            return await accepted(request, record, headers)
        final = await request.app[appkeys.WAITER].wait(record.id, prefer.wait_s, current=record)
        return await answer_for_record(request, final or record, headers, blocking=True)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        # The job exists and is paid for: Redis went away while we waited. Answering 503 would invite a retry that
        # pays again, so the caller gets its job (from memory) to poll once Redis is back.
        log.warning("redis lost after the job was accepted; answering 202", job_id=record.id)
        view = job_view(record, retention_ms=settings.jobs.retention_s * 1000)
        location = {"Location": view.links["self"], "Retry-After": "2"}
        return json_response(view, status=202, headers={**headers, **location})


async def accepted(request: web.Request, record: JobRecord, headers: dict[str, str]) -> web.Response:
    view = await view_for(request, record)
    return json_response(view, status=202, headers={**headers, "Location": view.links["self"]})


def _service(request: web.Request) -> Service:
    key = request.match_info["tool"]
    service = request.app[appkeys.CATALOG].resolve(key)
    if service is None:
        raise errors.ServiceNotFound(f"tool {key[:100]!r} not found; see /api/catalog")
    structlog.contextvars.bind_contextvars(service_id=service.id)
    return service
