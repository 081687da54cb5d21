"""The outermost middleware (`request_context`; api/app.py adds three inside it): request id, canonical log line,
and every error that reaches it turned into a JSON answer.

Each request gets an id (the caller's `X-Request-ID` when it is sane, else a new one), echoed in the response
and bound to the log context. Exactly one log line per request is written here, after the answer is known.
Domain errors (`api.errors`), aiohttp's own HTTP errors (unknown route, wrong method, body too large) and
Redis outages all leave as `{"error", "code", "requestId"}` with the right status; anything unexpected is
logged with its traceback and answered with a bare 500 that reveals nothing. Which module chose a status (a
failed job's, a refused payment's), and the JSON-RPC answers of /mcp that never come here: docs/architecture.md,
"Errors and HTTP statuses".
"""

from __future__ import annotations

import re
import secrets
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api import errors
from api.appkeys import METRICS, REQUEST_ID
from api.responses import json_response
from shared.keys import STORE_NOT_NOW

log = structlog.get_logger("api.request")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_HTTP_ERRORS: dict[int, type[errors.Server402Error]] = {
    400: errors.BadRequest,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
}


def request_id_for(header: str | None) -> str:
    if header and _REQUEST_ID_RE.fullmatch(header):
        return header
    return secrets.token_hex(16)  # 32 hex characters, like a uuid4's hex (a third of its cost)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id_for(request.headers.get(REQUEST_ID_HEADER))
    request[REQUEST_ID] = rid
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON answer here, and only here
        response = error_response(as_domain_error(exc), rid)
    response.headers[REQUEST_ID_HEADER] = rid
    elapsed = time.perf_counter() - started
    route = _route_name(request)
    request.app[METRICS].observe_request(route, _method(request), response.status, elapsed)
    log.info(
        "request",
        method=request.method,
        path=request.path,
        route=route,
        status=response.status,
        duration_ms=round(elapsed * 1000, 2),
    )
    return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method(request: web.Request) -> str:
    return request.method if request.method in _METHODS else "other"  # a label never takes arbitrary text


def as_domain_error(exc: BaseException) -> errors.Server402Error:
    if isinstance(exc, errors.Server402Error):
        return exc
    if isinstance(exc, web.HTTPException):
        return _from_http_exception(exc)
    if isinstance(exc, STORE_NOT_NOW):
        log.warning("redis unavailable", error=type(exc).__name__)
        return errors.StoreUnavailable("storage is temporarily unavailable, retry shortly", retry_after=2)
    log.exception("unhandled error")
    return errors.Server402Error("internal error")


def _from_http_exception(exc: web.HTTPException) -> errors.Server402Error:
    cls = _HTTP_ERRORS.get(exc.status)
    if cls is errors.PayloadTooLarge:
        return errors.PayloadTooLarge("request body is too large")
    if cls is errors.MethodNotAllowed:
        allowed = frozenset(_allowed(exc))
        return errors.MethodNotAllowed(f"method not allowed; use {', '.join(sorted(allowed))}", allowed=allowed)
    if cls is errors.NotFound:
        return errors.NotFound("no such route; see /openapi.json")
    if cls is not None:
        return cls(exc.reason.lower())
    return errors.Server402Error(exc.reason.lower())


def _allowed(exc: web.HTTPException) -> set[str]:
    return set(getattr(exc, "allowed_methods", ()) or ())


def error_response(exc: errors.Server402Error, rid: str) -> web.Response:
    body = {**exc.body(), "requestId": rid}
    return json_response(body, status=exc.status, headers=exc.headers())


def _route_name(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    return resource.canonical if resource is not None else "-"
