"""The results of an MCP tool call, shared by `tools/call` (api/mcp_tools.py) and tasks (api/mcp_tasks.py):

succeeded           structuredContent: the seed's envelope (the HTTP 200 body), also as JSON text
still running       structuredContent: the job (jobId, status, links.self) and a note to poll /api/jobs/{id}
bad arguments, refused access, failed job     isError, structuredContent: the HTTP error body
payment required    isError, structuredContent: the x402 PaymentRequired (x402Version, resource, accepts)
                    merged with the seed's body (error, code, message, payment); the same JSON as text
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from x402.http.utils import decode_payment_required_header

from api import appkeys, errors
from api.jobs_view import view_for
from shared.jobs import JobError, JobRecord

_encoder = msgspec.json.Encoder()


async def describe(request: web.Request, record: JobRecord) -> str:
    """A line on where an unfinished job stands."""
    if record.status == "running":
        return f"running (attempt {max(record.attempts, 1)})"
    if record.status == "settling":
        return "settling its x402 payment (the facilitator's answer is awaited)"
    retrying = record.last_job_error()
    if retrying is not None:
        return f"queued for a retry after {retrying.code}"
    position = await request.app[appkeys.JOBS].queue_position(record)
    return f"queued (position {position + 1})" if position is not None else "queued"


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
