"""How a job is answered: its public view, and a finished job turned into the tool call's HTTP answer."""

from __future__ import annotations

from aiohttp import web

from api import appkeys, errors
from api.responses import json_response
from shared.failures import ended_failure
from shared.jobs import JobError, JobRecord, JobView, job_view
from shared.payments import token_for


async def view_for(request: web.Request, record: JobRecord) -> JobView:
    store = request.app[appkeys.JOBS]
    position = await store.queue_position(record) if record.status == "queued" else None
    credit = None
    if record.refunded and record.payment_kind == "x402" and record.payment_id:
        credit = token_for(request.app[appkeys.SETTINGS].payments.token_secret, record.payment_id)
    return job_view(record, retention_ms=store.retention_ms, queue_position=position, credit_token=credit)


async def answer_for_record(
    request: web.Request, record: JobRecord, headers: dict[str, str], *, blocking: bool
) -> web.Response:
    """200 with the envelope, the job's error, or 202 with the job while it is still going. A failure answers with
    the status the job view says (`httpStatus`, from its error's kind: shared/failures.py)."""
    if record.status == "succeeded" and record.result is not None:
        return web.Response(body=record.result.encode(), content_type="application/json", headers=headers)
    view = await view_for(request, record)
    if record.status in ("settling", "queued", "running"):
        return json_response(view, status=202, headers={**headers, "Location": view.links["self"]})
    error = record.job_error() or JobError.of("input", "failed", "the job failed")
    retry_after = ended_failure(record.status, error.kind).retry_after_s
    raise errors.JobFailed(view.http_status, error.code, error.message, view, retry_after=retry_after)
