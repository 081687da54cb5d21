"""`GET /api/jobs/{jobId}` (long poll with `?wait=N`) and `DELETE /api/jobs/{jobId}` (cancel)."""

from __future__ import annotations

import math

import structlog
from aiohttp import web

from api import keys
from api.identity import job_readers
from api.jobs_view import view_for
from api.responses import json_response
from shared import errors
from shared.jobs import JobRecord, job_created_ms, now_ms

routes = web.RouteTableDef()

# A missing job older than the retention time was ours and has expired (410); an id claiming to be older than
# this was never ours (a forged timestamp), so it gets the plain 404.
PLAUSIBLE_JOB_AGE_MS = 400 * 86_400_000


async def owned_job(request: web.Request) -> JobRecord:
    job_id = request.match_info["job_id"]
    structlog.contextvars.bind_contextvars(job_id=job_id[:64])
    record = await request.app[keys.JOBS].get(job_id) if job_created_ms(job_id) is not None else None
    if record is None:
        raise _missing(request, job_id)
    if record.owner not in await job_readers(request):
        raise errors.JobNotFound("job not found")  # the same answer as for no job: existence is not leaked
    return record


def _missing(request: web.Request, job_id: str) -> errors.Server402Error:
    created = job_created_ms(job_id)
    settings = request.app[keys.SETTINGS]
    age_ms = now_ms() - created if created is not None else -1
    if settings.job_retention_s * 1000 < age_ms <= PLAUSIBLE_JOB_AGE_MS:
        return errors.Gone("the job has expired and its result was deleted")
    return errors.JobNotFound("job not found")


def wait_seconds(request: web.Request) -> float:
    """`?wait=N`: seconds to long-poll, at most SERVER402_WAIT_MAX_S."""
    raw = request.query.get("wait", "")
    if raw == "":
        return 0.0
    try:
        wait_s = float(raw)
    except ValueError:
        raise errors.BadRequest("wait must be a number of seconds") from None
    if not math.isfinite(wait_s) or wait_s < 0:
        raise errors.BadRequest("wait must be a number of seconds")
    return min(wait_s, request.app[keys.SETTINGS].wait_max_s)


@routes.get("/api/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    wait_s = wait_seconds(request)
    record = await owned_job(request)
    if wait_s > 0:
        record = await request.app[keys.WAITER].wait(record.id, wait_s, current=record) or record
    return json_response(await view_for(request, record))


@routes.delete("/api/jobs/{job_id}")
async def cancel_job(request: web.Request) -> web.Response:
    record = await owned_job(request)
    outcome = await request.app[keys.JOBS].cancel(record)
    if outcome == "settling":
        raise errors.Conflict("the job's x402 payment is still settling: cancel it once it is queued")
    if outcome not in ("canceled", "cancel_requested"):
        raise errors.Conflict(f"the job has already finished ({outcome})")
    current = await request.app[keys.JOBS].get(record.id) or record
    return json_response(await view_for(request, current), status=200 if outcome == "canceled" else 202)
