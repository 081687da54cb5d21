"""`GET /api/jobs/{jobId}` (long poll with `?wait=N`) and `DELETE /api/jobs/{jobId}` (cancel)."""

from __future__ import annotations

from aiohttp import web

from api import appkeys, errors
from api.jobs_view import view_for
from api.ownership import owned_job
from api.request_options import wait_seconds
from api.responses import json_response

routes = web.RouteTableDef()


@routes.get("/api/jobs/{job_id}")
async def get_job(request: web.Request) -> web.Response:
    wait_s = wait_seconds(request)
    record = await owned_job(request)
    if wait_s > 0:
        record = await request.app[appkeys.WAITER].wait(record.id, wait_s, current=record) or record
    return json_response(await view_for(request, record))


@routes.delete("/api/jobs/{job_id}")
async def cancel_job(request: web.Request) -> web.Response:
    record = await owned_job(request)
    outcome = await request.app[appkeys.JOBS].cancel(record)
    if outcome == "settling":
        raise errors.Conflict("the job's x402 payment is still settling: cancel it once it is queued")
    if outcome not in ("canceled", "cancel_requested"):
        raise errors.Conflict(f"the job has already finished ({outcome})")
    current = await request.app[appkeys.JOBS].get(record.id) or record
    return json_response(await view_for(request, current), status=200 if outcome == "canceled" else 202)
