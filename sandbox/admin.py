"""The sandbox's own endpoints under /_sandbox/ (the admin ones answer loopback clients only, else 403).

Admin API, for tests and benchmarks (JSON in, JSON out; bad input -> 400 `{"Code":"InvalidParameter",...}`):

    PUT    /_sandbox/faults   set the rule of one action (or "*": every action without its own rule)
           {"action": "DetectFace" | "*",
            "latencyMs": {"fixed": ms} | {"uniform": [low, high]} | {"lognormal": {"median": ms, "sigma": s}},
            "error5xxRate": 0..1,  "status5xx": 500 | 503 (default 500: InternalError; 503: ServiceUnavailable),
            "throttleRate": 0..1   (400 Throttling.User, as the limiter answers),
            "hangRate": 0..1       (held open until the client gives up: never answered within 1 h),
            "nonJsonRate": 0..1    (502 with an HTML body: the SDK raises UnretryableException),
            "failNext": N          (the next N calls answer 500 InternalError, exactly),
            "qps": N               (the QPS limit of that action, or of all actions for "*"),
            "seed": int}           (seeds the rule's random draws; default 0)
           every key but "action" optional; the rates together at most 1. Answers {"faults": [rules...]}.
    GET    /_sandbox/faults   the rules in force, each with remainingFailNext
    DELETE /_sandbox/faults   clear every rule (?action=X: only that one)
    GET    /_sandbox/stats    {"actions": {Action: {calls, ok, throttled, errors, faults, maxPerSecond}},
                               "totals": {..., connections}, "hanging": n, "fetches": n}   (see sandbox/stats.py;
                              connections: the TCP connections calls came on; fetches: loopback image
                              downloads attempted)
    POST   /_sandbox/reset    forget stats (and fetches), state (face DBs, templates, tokens), nonces and QPS
                              windows, and release hanging calls; fault rules stay (DELETE them)
    GET    /_sandbox/health   {"ok": true, "actions": [...]}

Served to anyone (the sandbox listens on loopback only): GET /_sandbox/images/<face.jpg|face.png|body.jpg|
blank-WxH.png> and GET /_sandbox/results/<name>.png (see sandbox/samples.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from aiohttp import web

from sandbox.appkeys import CATALOG, FAULTS, HANGS, LIMITER, LOADER, NONCES, SAMPLES, STATE, STATS
from sandbox.config import is_loopback_host
from sandbox.errors import ParameterError, RoutingError, SandboxError
from sandbox.faults import FaultRule
from sandbox.samples import render_blank, render_result
from sandbox.wire import json_response

_rule_decoder = msgspec.json.Decoder(FaultRule)


def _loopback_only(request: web.Request) -> None:
    if not is_loopback_host(request.remote or ""):
        raise SandboxError("Forbidden", "The sandbox admin API answers loopback clients only.", 403)


async def put_fault(request: web.Request) -> web.Response:
    _loopback_only(request)
    try:
        rule = _rule_decoder.decode(await request.read())
        request.app[FAULTS].put(rule)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise ParameterError("InvalidParameter", f"Bad fault rule: {exc}") from None
    return json_response({"faults": request.app[FAULTS].describe()})


async def get_faults(request: web.Request) -> web.Response:
    _loopback_only(request)
    return json_response({"faults": request.app[FAULTS].describe()})


async def delete_faults(request: web.Request) -> web.Response:
    _loopback_only(request)
    request.app[FAULTS].clear(request.query.get("action"))
    return json_response({"faults": request.app[FAULTS].describe()})


async def get_stats(request: web.Request) -> web.Response:
    _loopback_only(request)
    app = request.app
    return json_response({**app[STATS].snapshot(), "hanging": app[HANGS].waiting, "fetches": app[LOADER].fetches})


async def reset(request: web.Request) -> web.Response:
    _loopback_only(request)
    app = request.app
    await app[HANGS].release_all()
    for clear in (app[STATS].clear, app[STATE].clear, app[NONCES].clear, app[LIMITER].clear):
        clear()
    app[LOADER].fetches = 0
    return json_response({"ok": True})


async def health(request: web.Request) -> web.Response:
    return json_response({"ok": True, "actions": request.app[CATALOG].actions})


async def sample_image(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    sample = request.app[SAMPLES].get(name)
    if sample is not None:
        return web.Response(body=sample.data, content_type=sample.content_type)
    return await _rendered(name, render_blank)


async def result_image(request: web.Request) -> web.Response:
    return await _rendered(request.match_info["name"], render_result)


async def _rendered(name: str, render: Callable[[str], bytes | None]) -> web.Response:
    data = await asyncio.get_running_loop().run_in_executor(None, render, name)
    if data is None:
        raise RoutingError("NotFound", f"No sandbox image named {name}.", 404)
    return web.Response(body=data, content_type="image/png")


def add_routes(app: web.Application) -> None:
    app.router.add_put("/_sandbox/faults", put_fault)
    app.router.add_get("/_sandbox/faults", get_faults)
    app.router.add_delete("/_sandbox/faults", delete_faults)
    app.router.add_get("/_sandbox/stats", get_stats)
    app.router.add_post("/_sandbox/reset", reset)
    app.router.add_get("/_sandbox/health", health)
    app.router.add_get("/_sandbox/images/{name}", sample_image)
    app.router.add_get("/_sandbox/results/{name}", result_image)
