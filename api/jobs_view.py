"""How a job is answered: its public view, and a finished job turned into the tool call's HTTP answer."""

from __future__ import annotations

from aiohttp import web

from api import keys
from api.responses import json_response
from shared import errors
from shared.jobs import OPERATOR_CODES, JobError, JobRecord, JobView, job_view
from shared.payments import token_for


async def view_for(request: web.Request, record: JobRecord) -> JobView:
    store = request.app[keys.JOBS]
    position = await store.queue_position(record.id) if record.status == "queued" else None
    credit = None
    if record.refunded and record.paymentKind == "x402" and record.paymentId:
        credit = token_for(request.app[keys.SETTINGS].token_secret, record.paymentId)
    return job_view(record, retention_ms=store.retention_ms, queue_position=position, credit_token=credit)


def failure_status(status: str, error: JobError) -> tuple[int, int | None]:
    """(HTTP status, Retry-After seconds) for a job that ended without a result."""
    fixed = {"canceled": 409, "expired": 504}.get(status)
    if fixed is not None:
        return fixed, None
    if error.code == "payment_failed":  # its x402 payment was not settled: nothing was charged
        return 402, None
    if error.code.startswith("Throttling"):
        return 503, 1
    if error.code == "UpstreamUnavailable":
        return 504, None
    if error.retryable or error.code.startswith(OPERATOR_CODES):
        return 502, None
    return 422, None  # the upstream refused this input (unreadable image, no face, bad parameter value)


async def answer_for_record(
    request: web.Request, record: JobRecord, headers: dict[str, str], *, blocking: bool
) -> web.Response:
    """200 with the envelope, the job's error, or 202 with the job while it is still going."""
    if record.status == "succeeded" and record.result is not None:
        return web.Response(body=record.result.encode(), content_type="application/json", headers=headers)
    view = await view_for(request, record)
    if record.status in ("settling", "queued", "running"):
        return json_response(view, status=202, headers={**headers, "Location": view.links["self"]})
    error = record.job_error() or JobError(code="failed", message="the job failed", retryable=False)
    status, retry_after = failure_status(record.status, error)
    raise errors.JobFailed(status, error.code, error.message, view, retry_after=retry_after)
