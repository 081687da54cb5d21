"""The API application factory. No I/O at import; clients live in cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api import appkeys
from api.apikeys import ApiKeyStore
from api.callcore.calls import CallCore
from api.callcore.gate import PaymentGate
from api.callcore.reconciler import Reconciler
from api.callcore.settlements import SettlementStore
from api.callcore.x402_gate import X402Gate
from api.middlewares import request_context
from api.openapi import build_openapi
from api.origin_guard import GUARD, guard_for, origin_guard
from api.ratelimits import client_rate_limit, rate_limit_headers
from api.read_timeouts import body_read_deadline, handler_args
from api.responses import json_bytes_response
from api.routes import batches, catalog, health, jobs, mcp, metrics, pages, payments, status, tools, webhooks
from api.search import SearchIndex
from api.validation import InputValidators
from api.waiter import JobWaiter
from shared.batches import BatchStore
from shared.catalog import Catalog
from shared.config import Settings
from shared.jobs import JobStore
from shared.keys import load_functions
from shared.metrics import ApiMetrics
from shared.payments import PaymentStore
from shared.quality import QualityStore

REDIS_MAX_CONNECTIONS = 512


def create_app(settings: Settings, catalog_: Catalog | None = None) -> web.Application:
    app = web.Application(
        middlewares=[request_context, origin_guard, client_rate_limit, body_read_deadline],
        client_max_size=settings.server.max_body_bytes,
        handler_args=handler_args(settings.server),  # the header read timeout, for run_app and test servers alike
    )
    app[appkeys.SETTINGS] = settings
    app[GUARD] = guard_for(app)
    app[appkeys.CATALOG] = catalog_ if catalog_ is not None else Catalog.load(settings.operator_file)
    app[appkeys.SEARCH] = SearchIndex(app[appkeys.CATALOG].services)
    app[appkeys.OPENAPI] = msgspec.json.encode(build_openapi(app[appkeys.CATALOG], settings))
    app[appkeys.VALIDATORS] = InputValidators(
        app[appkeys.CATALOG], allowed_networks=settings.upstream.image_allowed_networks
    )
    app[appkeys.METRICS] = ApiMetrics()
    app.on_response_prepare.append(rate_limit_headers)  # RateLimit fields on errors and streams too
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(jobs_ctx)
    for module in (health, catalog, tools, jobs, batches, webhooks, payments, mcp, status, metrics, pages):
        app.add_routes(module.routes)
    app.router.add_get("/openapi.json", openapi_document)
    return app


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = BlockingConnectionPool.from_url(
        app[appkeys.SETTINGS].redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        # never sent again after a failure, whatever the URL's options say (`retry_on_timeout=true` would resend a
        # command that may have run: a payment's call spent twice); the callers decide what a failure means
        retry=Retry(NoBackoff(), 0),
    )
    app[appkeys.REDIS] = Redis(connection_pool=pool)
    try:
        await load_functions(app[appkeys.REDIS])  # refuses a server without functions (Redis < 7) at once
    except BaseException:
        await app[appkeys.REDIS].aclose()
        await pool.disconnect()
        raise
    yield
    await app[appkeys.REDIS].aclose()
    await pool.disconnect()


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    app[appkeys.BATCHES] = BatchStore.from_settings(app[appkeys.REDIS], settings)
    app[appkeys.PAYMENTS] = PaymentStore(app[appkeys.REDIS], settings.payments, settings.x402)
    app[appkeys.API_KEYS] = ApiKeyStore(app[appkeys.REDIS])
    app[appkeys.X402] = X402Gate(settings.x402)
    app[appkeys.QUALITY] = QualityStore(app[appkeys.REDIS])
    app[appkeys.QUALITY].start()  # writes the calls and 402s it counts every second
    app[appkeys.JOBS] = JobStore(
        app[appkeys.REDIS], retention_s=settings.jobs.retention_s, quality=app[appkeys.QUALITY]
    )
    settlements = SettlementStore(app[appkeys.REDIS])
    app[appkeys.GATE] = PaymentGate(
        settings, app[appkeys.CATALOG], app[appkeys.PAYMENTS], app[appkeys.X402], app[appkeys.METRICS],
        app[appkeys.QUALITY], settlements,
    )  # fmt: skip
    app[appkeys.CORE] = CallCore(
        settings, app[appkeys.GATE], app[appkeys.JOBS], app[appkeys.REDIS], app[appkeys.METRICS]
    )
    reconciler = Reconciler(
        app[appkeys.CORE], app[appkeys.GATE], settlements, retention_ms=settings.jobs.retention_s * 1000
    )
    reconciler.start()  # ends every x402 payment left settling, in whichever API process gets to it first
    app[appkeys.WAITER] = JobWaiter(app[appkeys.REDIS], app[appkeys.JOBS])
    await app[appkeys.WAITER].start()
    yield
    await reconciler.stop()
    await app[appkeys.WAITER].stop()
    await app[appkeys.QUALITY].stop()
    await app[appkeys.X402].aclose()


async def openapi_document(request: web.Request) -> web.Response:
    return json_bytes_response(request.app[appkeys.OPENAPI])
