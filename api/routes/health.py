"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: Redis answers)."""

from __future__ import annotations

import asyncio

import redis.exceptions
from aiohttp import web

from api.keys import REDIS
from api.responses import json_response
from shared import errors

READY_TIMEOUT_S = 1.0

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[REDIS].ping(), READY_TIMEOUT_S)
    except (redis.exceptions.RedisError, OSError, TimeoutError):
        raise errors.StoreUnavailable(
            "not ready: redis unreachable", retry_after=2, details={"checks": {"redis": "unreachable"}}
        ) from None
    return json_response({"status": "ready", "checks": {"redis": "ok"}})
