"""Whose a job or batch is, as HTTP routes and MCP ask it: the thing named in the path, when the caller may see it.
A thing the caller may not see gets the same 404 as no thing at all: existence is not leaked.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from api import appkeys, errors
from api.identity import job_readers
from shared.batches import BatchRecord, is_batch_id
from shared.jobs import JobRecord, job_created_ms, now_ms

# A missing job older than the retention time was ours and has expired (410); an id claiming to be older than
# this was never ours (a forged timestamp), so it gets the plain 404.
PLAUSIBLE_JOB_AGE_MS = 400 * 86_400_000


async def owned_job(request: web.Request) -> JobRecord:
    job_id = request.match_info["job_id"]
    structlog.contextvars.bind_contextvars(job_id=job_id[:64])
    record = await request.app[appkeys.JOBS].get(job_id) if job_created_ms(job_id) is not None else None
    if record is None:
        raise _missing(request, job_id)
    if record.owner not in await job_readers(request):
        raise errors.JobNotFound("job not found")  # the same answer as for no job: existence is not leaked
    return record


def _missing(request: web.Request, job_id: str) -> errors.Server402Error:
    created = job_created_ms(job_id)
    settings = request.app[appkeys.SETTINGS]
    age_ms = now_ms() - created if created is not None else -1
    if settings.jobs.retention_s * 1000 < age_ms <= PLAUSIBLE_JOB_AGE_MS:
        return errors.Gone("the job has expired and its result was deleted")
    return errors.JobNotFound("job not found")


async def owned_batch(request: web.Request) -> BatchRecord:
    batch_id = request.match_info["batch_id"]
    structlog.contextvars.bind_contextvars(batch_id=batch_id[:64])
    record = await request.app[appkeys.BATCHES].get(batch_id) if is_batch_id(batch_id) else None
    if record is None or record.owner not in await job_readers(request):
        raise errors.NotFound("batch not found")
    return record
