"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: calls can be served).

Ready means Redis answers and at least one invocation worker is alive (its heartbeat is fresh, see
shared/liveness.py): without one, every tool call would only wait for its deadline. The answer counts the live
workers of each kind; health workers are reported but not required (they only refresh the quality figures).
"""

from __future__ import annotations

import asyncio

import redis.exceptions
from aiohttp import web

from api import errors
from api.appkeys import REDIS
from api.responses import json_response
from shared.liveness import read_liveness

READY_TIMEOUT_S = 1.0
RETRY_AFTER_S = 2

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        liveness = await asyncio.wait_for(read_liveness(request.app[REDIS]), READY_TIMEOUT_S)
    except (redis.exceptions.RedisError, OSError, TimeoutError):
        raise errors.StoreUnavailable(
            "not ready: redis unreachable", retry_after=RETRY_AFTER_S, details={"checks": {"redis": "unreachable"}}
        ) from None
    workers = {kind: alive.count for kind, alive in liveness.items()}
    if not liveness["invocation"].alive:
        raise errors.ServiceUnavailable(
            "not ready: no invocation worker is alive",
            retry_after=RETRY_AFTER_S,
            details={"checks": {"redis": "ok", "workers": workers}},
        )
    return json_response({"status": "ready", "redis": "ok", "workers": workers})
