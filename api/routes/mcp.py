"""`POST /mcp`: the catalog's tools over MCP streamable HTTP, protocol 2025-11-25 and 2026-07-28.

One POST carries one JSON-RPC message (api/mcp_protocol.py says how the era is told and checked). Requests are
dispatched by era to one function each (tools: api/mcp_tools.py; tasks: api/mcp_tasks.py); notifications and
posted responses are acknowledged with 202. Answers are JSON, or an SSE stream when the client sent a progress
token, waits on `tasks/result`, or accepts only SSE. The body must be JSON (`application/json`, or a `+json`
type); Origin and Host are checked before (api/origin_guard.py). No session is kept (`initialize` hands out an
`Mcp-Session-Id` that is never checked):
GET (no server-initiated stream) and DELETE (no session to end) answer 405 with `Allow: POST`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from aiohttp import web

from api import appkeys
from api.mcp_protocol import (
    HANDSHAKE_VERSIONS,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    LATEST_HANDSHAKE_VERSION,
    METHOD_NOT_FOUND,
    MODERN_VERSIONS,
    SERVER_INFO_META,
    EventStream,
    Message,
    RequestId,
    RpcError,
    ToolCall,
    accepts,
    decode_message,
    envelope_of,
    error_message,
    error_response,
    result_message,
)
from api.mcp_tasks import (
    HANDSHAKE_CAPABILITY,
    TASKS_EXTENSION,
    cancel_task,
    get_task,
    list_tasks,
    task_result,
    update_task,
)
from api.mcp_tools import LIST_CACHE_HINT, call_tool, list_tools
from api.middlewares import as_domain_error
from api.request_body import is_json_type

routes = web.RouteTableDef()
SESSION_HEADER = "Mcp-Session-Id"
SERVER_INFO = {"name": "server402", "title": "server402: Alibaba Cloud Face & Body AI, pay per call",
               "version": "0.1.0"}  # fmt: skip
TOOLS_CAPABILITY: dict[str, Any] = {"listChanged": False}
# Resources and prompts: none (the catalog is tools), offered as empty lists so hosts that list them get an answer;
# logging: the level is accepted, and no log notifications are sent (calls report through progress and tasks).
EMPTY_CAPABILITIES: dict[str, Any] = {"resources": {}, "prompts": {}}
HANDSHAKE_CAPABILITIES: dict[str, Any] = {"tools": TOOLS_CAPABILITY, "tasks": HANDSHAKE_CAPABILITY, "logging": {},
                                          **EMPTY_CAPABILITIES}  # fmt: skip
MODERN_CAPABILITIES: dict[str, Any] = {"tools": TOOLS_CAPABILITY, "extensions": {TASKS_EXTENSION: {}},
                                       **EMPTY_CAPABILITIES}  # fmt: skip
INSTRUCTIONS = (
    "Face and body analysis tools (Alibaba Cloud Visual Intelligence), paid per call. A priced tool called "
    "without payment returns isError with x402 payment terms; pay by retrying with the signed PaymentPayload in "
    "params._meta['x402/payment'] or with a paymentToken argument from POST /api/payments. Send a progressToken "
    "to follow long calls; a call still running when the wait ends returns its jobId to poll at /api/jobs/{jobId}."
)

Handler = Callable[[ToolCall], Awaitable[dict[str, Any]]]


async def initialize(call: ToolCall) -> dict[str, Any]:
    requested = call.params.get("protocolVersion")
    if not isinstance(requested, str):
        raise RpcError(INVALID_PARAMS, "initialize needs params.protocolVersion")
    version = requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION
    structlog.contextvars.bind_contextvars(mcp_version=version)
    return {"protocolVersion": version, "capabilities": HANDSHAKE_CAPABILITIES, "serverInfo": SERVER_INFO,
            "instructions": INSTRUCTIONS}  # fmt: skip


async def ping(call: ToolCall) -> dict[str, Any]:
    return {}


async def set_level(call: ToolCall) -> dict[str, Any]:
    if call.params.get("level") not in LOG_LEVELS:
        raise RpcError(INVALID_PARAMS, f"level must be one of {', '.join(LOG_LEVELS)}")
    return {}


def _empty(field: str) -> Handler:
    async def listed(call: ToolCall) -> dict[str, Any]:
        if call.params.get("cursor") is not None:
            raise RpcError(INVALID_PARAMS, "invalid cursor: the list has a single page")
        return {field: [], **(LIST_CACHE_HINT if call.envelope.modern else {})}

    return listed


LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
EMPTY_LISTS: dict[str, Handler] = {"resources/list": _empty("resources"),
                                   "resources/templates/list": _empty("resourceTemplates"),
                                   "prompts/list": _empty("prompts")}  # fmt: skip


async def discover(call: ToolCall) -> dict[str, Any]:
    return {"supportedVersions": [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS], "capabilities": MODERN_CAPABILITIES,
            "instructions": INSTRUCTIONS, **LIST_CACHE_HINT}  # fmt: skip


METHODS: dict[str, dict[str, Handler]] = {
    "handshake": {"initialize": initialize, "ping": ping, "tools/list": list_tools, "tools/call": call_tool,
                  "tasks/get": get_task, "tasks/result": task_result, "tasks/list": list_tasks,
                  "tasks/cancel": cancel_task, "logging/setLevel": set_level, **EMPTY_LISTS},
    "modern": {"server/discover": discover, "tools/list": list_tools, "tools/call": call_tool,
               "tasks/get": get_task, "tasks/cancel": cancel_task, "tasks/update": update_task, **EMPTY_LISTS},
}  # fmt: skip


@routes.post("/mcp")
async def mcp(request: web.Request) -> web.StreamResponse:
    wants_json, wants_sse = accepts(request)
    try:
        if not (wants_json or wants_sse):
            raise RpcError(INVALID_REQUEST, "Not Acceptable: accept application/json and text/event-stream", status=406)
        if not is_json_type(request.content_type):  # no Content-Type, text/plain, forms: a cross-site simple POST
            raise RpcError(INVALID_REQUEST, "Unsupported Media Type: send application/json", status=415)
        message = decode_message(await _body(request))
    except RpcError as exc:
        structlog.contextvars.bind_contextvars(rpc_error=exc.code)
        return error_response(exc)
    if isinstance(message.method, str) and isinstance(message.id, int | str):
        stream = _stream_for(request, message, wants_json, wants_sse)
        return await _answer(request, message, message.id, stream, sse_only=not wants_json)
    if isinstance(message.method, str) or message.result is not msgspec.UNSET or message.error is not msgspec.UNSET:
        return web.Response(status=202)  # a notification, or a response to a request we never send: nothing to do
    return error_response(RpcError(INVALID_REQUEST, "a JSON-RPC request needs a method and an id"))


async def _answer(
    request: web.Request, message: Message, request_id: RequestId, stream: EventStream | None, *, sse_only: bool
) -> web.StreamResponse:
    method = str(message.method)
    structlog.contextvars.bind_contextvars(mcp_method=method[:64])
    try:
        envelope = envelope_of(request, message)
    except RpcError as exc:  # only the 2026-07-28 checks refuse an envelope
        structlog.contextvars.bind_contextvars(rpc_error=exc.code)
        return error_response(exc, request_id, "modern")
    structlog.contextvars.bind_contextvars(mcp_version=envelope.version)
    try:
        result = await _dispatch(ToolCall(request, envelope, message.params, stream), method)
    except RpcError as exc:
        structlog.contextvars.bind_contextvars(rpc_error=exc.code)
        if stream is not None and (stream.started or sse_only):
            return await stream.finish(error_message(exc, request_id))
        return error_response(exc, request_id, envelope.era)
    headers = _session_header() if method == "initialize" else {}
    if stream is not None and (stream.started or sse_only):
        stream.headers.update(headers)  # taken when the stream opens: here, unless progress went first
        return await stream.finish(result_message(request_id, result))
    return web.Response(body=result_message(request_id, result), content_type="application/json", headers=headers)


def _session_header() -> dict[str, str]:
    """An `Mcp-Session-Id` for clients that want one (some open several streams under it). It names nothing
    kept: every request stands alone, with or without it, and it is never checked."""
    return {SESSION_HEADER: secrets.token_hex(16)}


async def _dispatch(call: ToolCall, method: str) -> dict[str, Any]:
    handler = METHODS[call.envelope.era].get(method)
    if handler is None:
        raise RpcError(METHOD_NOT_FOUND, f"method {method[:64]!r} not found (protocol {call.envelope.version})")
    try:
        result = await handler(call)
    except RpcError:
        raise
    except Exception as exc:  # noqa: BLE001 - our own failure answers as JSON-RPC; as_domain_error logs it
        domain = as_domain_error(exc)
        raise RpcError(INTERNAL_ERROR, domain.message, {"code": domain.code}) from None
    if call.envelope.modern:
        result.setdefault("resultType", "complete")
        result["_meta"] = {SERVER_INFO_META: SERVER_INFO, **result.get("_meta", {})}
    return result


def _stream_for(request: web.Request, message: Message, wants_json: bool, wants_sse: bool) -> EventStream | None:
    """An SSE answer when the client wants progress and takes SSE, waits on `tasks/result` (task status
    notifications and keepalives while it blocks), or takes nothing but SSE."""
    token = _progress_token(message.params)
    if wants_sse and (token is not None or not wants_json or message.method == "tasks/result"):
        return EventStream(request, token)
    return None


def _progress_token(params: dict[str, Any]) -> RequestId | None:
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, int | str) and not isinstance(token, bool) else None


async def _body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[appkeys.SETTINGS].server.max_body_bytes
        raise RpcError(INVALID_REQUEST, f"request body too large (limit {limit} bytes)", status=413) from None
