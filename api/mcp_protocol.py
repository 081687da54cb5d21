"""MCP over streamable HTTP: the JSON-RPC envelope, the two protocol eras, and how answers are framed.

Two eras share the one `POST /mcp` endpoint, and nothing is kept between requests. How a request's era is told,
and the JSON-RPC error codes: docs/architecture.md, "MCP"; their HTTP statuses: "Errors and HTTP statuses".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from aiohttp import web

from api import appkeys
from api.json_depth import NESTED_TOO_DEEPLY, too_deep

HANDSHAKE_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")  # the initialize era, oldest first
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]
MODERN_VERSIONS = ("2026-07-28",)
DEFAULT_HANDSHAKE_VERSION = "2025-03-26"  # what a request without MCP-Protocol-Version is taken to speak

PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"

PROTOCOL_VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
ROUTING_HEADERS = (PROTOCOL_VERSION_HEADER, METHOD_HEADER, NAME_HEADER)
NAME_BEARING_METHODS = {"tools/call": "name"}  # the body field Mcp-Name mirrors (prompts and resources: none here)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020
MISSING_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022

# HTTP status of a JSON-RPC error. The stateless era maps request errors onto HTTP (as the official SDK does);
# the handshake era answers in-band (200) except for a body that is not a request at all.
_MODERN_STATUS = {PARSE_ERROR: 400, INVALID_REQUEST: 400, INVALID_PARAMS: 400, HEADER_MISMATCH: 400,
                  MISSING_CLIENT_CAPABILITY: 400, UNSUPPORTED_PROTOCOL_VERSION: 400, METHOD_NOT_FOUND: 404}  # fmt: skip
_HANDSHAKE_STATUS = {PARSE_ERROR: 400, INVALID_REQUEST: 400, UNSUPPORTED_PROTOCOL_VERSION: 400}

KEEPALIVE_S = 15.0  # an SSE comment after this long without a write keeps proxies from closing the stream

RequestId = int | str
Era = Literal["handshake", "modern"]

_BASE64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")
_encoder = msgspec.json.Encoder()


class RpcError(Exception):
    """A JSON-RPC error answer; `status` overrides the HTTP status its code maps to (406, 413, 415)."""

    def __init__(self, code: int, message: str, data: Any = None, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.status = status

    def payload(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class Message(msgspec.Struct, frozen=True):
    """One posted JSON-RPC 2.0 message: a request (method and id), a notification (no id) or a response."""

    jsonrpc: Literal["2.0"]
    method: str | msgspec.UnsetType = msgspec.UNSET
    id: int | str | msgspec.UnsetType = msgspec.UNSET
    params: dict[str, Any] = {}
    result: Any = msgspec.UNSET
    error: Any = msgspec.UNSET


@dataclass(frozen=True)
class Envelope:
    """The request as understood: its era, protocol version and (2026-07-28) the extensions its client declares."""

    era: Era
    version: str
    extensions: frozenset[str] = frozenset()

    @property
    def modern(self) -> bool:
        return self.era == "modern"


@dataclass(frozen=True)
class ToolCall:
    """What a method handler gets: the HTTP request, the protocol era, the params and the answer's stream."""

    request: web.Request
    envelope: Envelope
    params: dict[str, Any]
    stream: EventStream | None


def decode_message(raw: bytes) -> Message:
    if too_deep(raw):
        raise RpcError(PARSE_ERROR, f"Parse error: {NESTED_TOO_DEEPLY}")
    try:
        decoded = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter for bytes that are not UTF-8
        raise RpcError(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    if isinstance(decoded, list):
        raise RpcError(INVALID_REQUEST, "batches are not supported: send one JSON-RPC message per POST")
    try:
        return msgspec.convert(decoded, Message)
    except msgspec.ValidationError as exc:
        raise RpcError(INVALID_REQUEST, f"not a JSON-RPC 2.0 message: {exc}") from None


def envelope_of(request: web.Request, message: Message) -> Envelope:
    """The era and protocol version of a message, after checking its headers against its body (2026-07-28)."""
    header = request.headers.get(PROTOCOL_VERSION_HEADER)
    meta = message.params.get("_meta")
    carries_envelope = isinstance(meta, dict) and PROTOCOL_VERSION_META in meta
    if not carries_envelope and (header is None or header in HANDSHAKE_VERSIONS):
        return Envelope("handshake", header or DEFAULT_HANDSHAKE_VERSION)
    if not carries_envelope and header not in MODERN_VERSIONS:
        raise _unsupported(str(header))
    return Envelope("modern", _check_modern(request, message), _declared_extensions(message.params["_meta"]))


def _declared_extensions(meta: dict[str, Any]) -> frozenset[str]:
    """The extension ids in `_meta.clientCapabilities.extensions` (an object keyed by id; a list is taken too)."""
    capabilities = meta.get(CLIENT_CAPABILITIES_META)
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    if isinstance(extensions, dict | list):
        return frozenset(name for name in extensions if isinstance(name, str))
    return frozenset()


def _check_modern(request: web.Request, message: Message) -> str:
    """The 2026-07-28 ladder: the `_meta` envelope, then headers equal to the body, then a version we serve."""
    meta = message.params.get("_meta")
    if not isinstance(meta, dict) or PROTOCOL_VERSION_META not in meta or CLIENT_CAPABILITIES_META not in meta:
        raise RpcError(
            INVALID_PARAMS,
            f"params._meta must carry {PROTOCOL_VERSION_META!r} and {CLIENT_CAPABILITIES_META!r}",
        )
    for name in ROUTING_HEADERS:
        if len(request.headers.getall(name, ())) > 1:
            raise RpcError(HEADER_MISMATCH, f"{name} header appears more than once")
    version = meta[PROTOCOL_VERSION_META]
    if request.headers.get(PROTOCOL_VERSION_HEADER) != version:
        raise RpcError(HEADER_MISMATCH, f"{PROTOCOL_VERSION_HEADER} header does not match params._meta")
    if request.headers.get(METHOD_HEADER) != message.method:
        raise RpcError(HEADER_MISMATCH, f"{METHOD_HEADER} header does not match the request's method")
    name_field = NAME_BEARING_METHODS.get(str(message.method))
    body_name = message.params.get(name_field) if name_field else None
    if body_name is not None and decode_header_value(request.headers.get(NAME_HEADER)) != body_name:
        raise RpcError(HEADER_MISMATCH, f"{NAME_HEADER} header does not match params.{name_field}")
    if not isinstance(version, str) or version not in MODERN_VERSIONS:
        raise _unsupported(str(version))
    return version


def _unsupported(requested: str) -> RpcError:
    # A header's bytes that are not UTF-8 arrive as lone surrogates, which no JSON encoder writes: shown as U+FFFD.
    shown = requested[:64].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return RpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS], "requested": shown},
    )


def decode_header_value(value: str | None) -> str | None:
    """An Mcp-* header value; non-ASCII values arrive as `=?base64?...?=` (None when that is malformed)."""
    match = _BASE64_SENTINEL.fullmatch(value) if value is not None else None
    if match is None:
        return value
    try:
        return base64.b64decode(match.group("payload"), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def accepts(request: web.Request) -> tuple[bool, bool]:
    """(JSON, SSE) acceptable to the client, wildcards included."""
    kinds = {part.split(";")[0].strip().lower() for part in request.headers.get("Accept", "").split(",")}
    wildcard = "*/*" in kinds
    return (
        wildcard or bool(kinds & {"application/json", "application/*"}),
        wildcard or bool(kinds & {"text/event-stream", "text/*"}),
    )


def error_message(error: RpcError, request_id: RequestId | None) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "error": error.payload()})


def error_response(error: RpcError, request_id: RequestId | None = None, era: Era = "handshake") -> web.Response:
    status = error.status or (_MODERN_STATUS if era == "modern" else _HANDSHAKE_STATUS).get(error.code, 200)
    return web.Response(body=error_message(error, request_id), status=status, content_type="application/json")


def result_message(request_id: RequestId, result: dict[str, Any]) -> bytes:
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def sse_event(message: bytes) -> bytes:
    """One `event: message` frame (JSON has no raw newlines, so one data line)."""
    return b"event: message\ndata: " + message + b"\n\n"


class EventStream:
    """The `text/event-stream` answer to one request, committed at its first write: progress notifications (when
    the client sent a progress token), keepalive comments, then the response as the last event. A client that
    goes away sets `closed`; nothing more is written."""

    def __init__(self, request: web.Request, progress_token: RequestId | None) -> None:
        self._request = request
        self._token = progress_token
        self._response: web.StreamResponse | None = None
        self._progress = 0
        self._last_write = 0.0
        self.closed = False
        self.headers: dict[str, str] = {}  # more response headers, sent when the stream opens

    @property
    def started(self) -> bool:
        return self._response is not None

    async def progress(self, message: str) -> None:
        """One `notifications/progress` (a no-op without a progress token); progress counts up from 1."""
        if self._token is None:
            return
        self._progress += 1
        params = {"progressToken": self._token, "progress": self._progress, "message": message}
        await self._write(sse_event(_encoder.encode({"jsonrpc": "2.0", "method": "notifications/progress",
                                                     "params": params})))  # fmt: skip

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """One notification (e.g. `notifications/tasks/status`) on the stream."""
        await self._write(sse_event(_encoder.encode({"jsonrpc": "2.0", "method": method, "params": params})))

    async def keepalive(self) -> None:
        if self._response is not None and asyncio.get_running_loop().time() - self._last_write >= KEEPALIVE_S:
            await self._write(b": keepalive\n\n")

    async def finish(self, message: bytes) -> web.StreamResponse:
        await self._write(sse_event(message))
        assert self._response is not None  # _write opened it
        if not self.closed:
            try:
                await self._response.write_eof()
            except ConnectionResetError:
                self.closed = True
        return self._response

    async def _write(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            if self._response is None:
                self._response = web.StreamResponse(headers=self._headers())
                await self._response.prepare(self._request)
            await self._response.write(data)
        except ConnectionResetError:  # the client went away; its job goes on and stays readable by id
            self.closed = True
        self._last_write = asyncio.get_running_loop().time()

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache, no-transform",
            "X-Accel-Buffering": "no",
            "X-Request-ID": self._request[appkeys.REQUEST_ID],
            **self.headers,
        }
