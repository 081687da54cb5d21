"""The Alibaba endpoint (`/`, GET or POST): signature -> action -> QPS limit -> faults -> parameters -> answer.

Stats count a call under the action it names (x-acs-action, or Action for v2) when the catalog knows it, else
under "(unknown)". Only calls that pass the QPS limiter count towards `maxPerSecond`.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from aiohttp import web

from sandbox.appkeys import CALL, CATALOG, CONFIG, FAULTS, HANGS, LIMITER, LOADER, STATE, STATS, VERIFIER, CallInfo
from sandbox.errors import ParameterError, SandboxError, ThrottlingError, internal_error
from sandbox.faults import Decision, Outcome
from sandbox.responses import BUILDERS, envelope
from sandbox.responses.context import Call, seeded_rng
from sandbox.signature import Caller, SignedRequest
from sandbox.wire import json_response

UNKNOWN_ACTION = "(unknown)"
V2_COMMON = frozenset(
    {
        "Action",
        "Format",
        "Version",
        "Timestamp",
        "SignatureNonce",
        "SignatureMethod",
        "SignatureVersion",
        "AccessKeyId",
        "Signature",
        "SecurityToken",
        "SignatureType",
        "BearerToken",
        "RegionId",
    }
)
NOT_PURCHASED_MESSAGE = "You have not activated this API, or your account is not permitted to call it."
NON_JSON_BODY = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


async def handle_rpc(request: web.Request) -> web.StreamResponse:
    app, info = request.app, request[CALL]
    body = await request.read()
    query = list(request.rel_url.query.items())
    form = _form(request, body)
    claimed = request.headers.get("x-acs-action") or dict(query).get("Action", "")
    info.action = claimed if app[CATALOG].get(claimed) else UNKNOWN_ACTION
    app[STATS].call(info.action, connection=request.transport)
    signed = SignedRequest(
        method=request.method, path=request.path, query=query, headers=request.headers, body=body, form=form
    )
    caller = app[VERIFIER].verify(signed)
    info.access_key_id = caller.access_key_id
    spec = app[CATALOG].resolve(caller.action, caller.version)
    info.host_id = spec.host_id
    _limit(app, caller, info.arrived)
    response = await _fault(app, info, app[FAULTS].decide(spec.action))
    if response is not None:
        return response
    params = spec.parser.parse(_params(query, form, caller))
    call = Call(
        action=spec.action,
        params=params,
        rng=seeded_rng(spec.action, params),
        account=app[STATE].account(caller.access_key_id),
        loader=app[LOADER],
        limits=spec.limits,
        base_url=f"{request.scheme}://{request.host}",
    )
    payload = await BUILDERS[spec.action](call)
    return json_response(envelope(spec.action, info.request_id, payload))


def _form(request: web.Request, body: bytes) -> list[tuple[str, str]]:
    if not body or request.content_type != "application/x-www-form-urlencoded":
        return []
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ParameterError("InvalidParameter", "The request body is not valid UTF-8 form data.") from None


def _params(query: list[tuple[str, str]], form: list[tuple[str, str]], caller: Caller) -> dict[str, str]:
    flat = dict(query)
    flat.update(form)
    if caller.scheme == "v2":
        flat = {key: value for key, value in flat.items() if key not in V2_COMMON}
    return flat


def _limit(app: web.Application, caller: Caller, arrived: float) -> None:
    """The QPS window counts a call from its arrival (the middleware's time), not from when this sandbox is done
    verifying it: a process's first verification takes milliseconds longer than the next ones', and the window
    would count that as the caller's call coming late."""
    qps = app[FAULTS].qps(caller.action) or app[CONFIG].qps
    if not app[LIMITER].try_acquire(caller.access_key_id, caller.action, qps, arrived):
        raise ThrottlingError()
    app[STATS].accepted(caller.action, arrived)


async def _fault(app: web.Application, info: CallInfo, decision: Decision) -> web.StreamResponse | None:
    if decision.outcome is Outcome.NONE:
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        return None
    info.fault = True
    if decision.outcome is Outcome.HANG:
        await app[HANGS].hold(app[CONFIG].hang_s)
        raise internal_error(503)
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    if decision.outcome is Outcome.THROTTLE:
        raise ThrottlingError()
    if decision.outcome is Outcome.NON_JSON:
        return web.Response(status=502, text=NON_JSON_BODY, content_type="text/html")
    if decision.outcome is Outcome.REFUSE:
        raise SandboxError("InvalidApi.NotPurchase", NOT_PURCHASED_MESSAGE, 403)
    raise internal_error(decision.status)
