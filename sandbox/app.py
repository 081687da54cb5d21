"""create_app(config): the sandbox application. No I/O at import; the catalog, the HTTP client for loopback
image fetches and the sample images are made in cleanup contexts at startup.

The middleware turns every raised error into an answer (an injected non-JSON fault answers for itself,
sandbox/rpc.py): a SandboxError becomes Alibaba's JSON error body with its status, an aiohttp HTTP error (unknown
path, wrong method, body too large) a JSON error too, anything unexpected a 500 InternalError (logged with its
traceback, never sent). It also feeds the per-action stats and writes one log line per request (action, access
key id cut to 4 characters, status, code, ms).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox import admin
from sandbox.appkeys import (
    CALL,
    CATALOG,
    CONFIG,
    FAULTS,
    HANGS,
    LIMITER,
    LOADER,
    NONCES,
    SAMPLES,
    STATE,
    STATS,
    VERIFIER,
    CallInfo,
)
from sandbox.catalog import ActionCatalog
from sandbox.config import SandboxConfig
from sandbox.errors import SandboxError, error_body, internal_error
from sandbox.faults import FaultTable, Hangs
from sandbox.images import ImageLoader
from sandbox.limits import RateLimiter
from sandbox.rpc import handle_rpc
from sandbox.samples import Sample, render_samples
from sandbox.signature import NonceStore, SignatureVerifier
from sandbox.state import StateStore
from sandbox.stats import Stats
from sandbox.wire import json_response

MAX_BODY_BYTES = 64 * 1024 * 1024
log = structlog.get_logger("sandbox")


def create_app(config: SandboxConfig) -> web.Application:
    app = web.Application(middlewares=[sandbox_middleware], client_max_size=MAX_BODY_BYTES)
    app[CONFIG] = config
    app.cleanup_ctx.extend([components_ctx, samples_ctx, loader_ctx])
    app.on_shutdown.append(release_hangs)
    admin.add_routes(app)
    app.router.add_route("GET", "/", handle_rpc)
    app.router.add_route("POST", "/", handle_rpc)
    return app


async def components_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    catalog = ActionCatalog.load(config.tools_file)
    app[CATALOG] = catalog
    app[NONCES] = NonceStore(config.nonce_ttl_s)
    app[VERIFIER] = SignatureVerifier(config.secrets, app[NONCES], config.max_clock_skew_s)
    app[LIMITER] = RateLimiter()
    app[STATS] = Stats()
    app[FAULTS] = FaultTable(catalog.actions)
    app[STATE] = StateStore()
    app[HANGS] = Hangs()
    yield


async def loader_ctx(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(trust_env=False, connector=aiohttp.TCPConnector(limit=64))
    samples: dict[str, Sample] = app[SAMPLES]
    app[LOADER] = ImageLoader(session, app[CONFIG].fetch_timeout_s, samples)
    yield
    await session.close()


async def samples_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SAMPLES] = await asyncio.get_running_loop().run_in_executor(None, render_samples)
    yield


async def release_hangs(app: web.Application) -> None:
    await app[HANGS].release_all()


@web.middleware
async def sandbox_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    info = CallInfo(request_id=str(uuid.uuid4()).upper(), arrived=time.monotonic())
    request[CALL] = info
    started = time.perf_counter()
    code = ""
    try:
        response = await handler(request)
    except SandboxError as exc:
        response, code = _error_response(exc, info), exc.code
    except web.HTTPException as exc:
        error = SandboxError(exc.reason.replace(" ", ""), f"{exc.reason}: {request.method} {request.path}", exc.status)
        response, code = _error_response(error, info), error.code
    except asyncio.CancelledError:
        _log(request, info, 499, "ClientClosed", started)
        raise
    except Exception:
        log.exception("sandbox.unexpected_error", path=request.path, action=info.action)
        error = internal_error()
        response, code = _error_response(error, info), error.code
    if response.status >= 400 and not code:
        code = "NonJson" if response.content_type != "application/json" else str(response.status)
    if info.action is not None:
        request.app[STATS].answered(info.action, response.status, code, info.fault)
    _log(request, info, response.status, code, started)
    return response


def _error_response(error: SandboxError, info: CallInfo) -> web.Response:
    return json_response(error_body(error, info.request_id, info.host_id), status=error.status)


def _log(request: web.Request, info: CallInfo, status: int, code: str, started: float) -> None:
    log.info(
        "sandbox.request",
        method=request.method,
        path=request.path,
        action=info.action,
        access_key=f"{info.access_key_id[:4]}…" if info.access_key_id else None,
        status=status,
        code=code or None,
        fault=info.fault or None,
        ms=round((time.perf_counter() - started) * 1000, 1),
        request_id=info.request_id,
    )
