"""The API application factory. No I/O at import; clients live in cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from api import keys
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
from shared.metrics import ApiMetrics
from shared.payments import PaymentStore
from shared.quality import QualityStore

REDIS_MAX_CONNECTIONS = 512


def create_app(settings: Settings, catalog_: Catalog | None = None) -> web.Application:
    app = web.Application(
        middlewares=[request_context, origin_guard, client_rate_limit, body_read_deadline],
        client_max_size=settings.max_body_bytes,
        handler_args=handler_args(settings),  # the header read timeout, for run_app and test servers alike
    )
    app[keys.SETTINGS] = settings
    app[GUARD] = guard_for(app)
    app[keys.CATALOG] = catalog_ if catalog_ is not None else Catalog.load(settings.operator_file)
    app[keys.SEARCH] = SearchIndex(app[keys.CATALOG].services)
    app[keys.OPENAPI] = msgspec.json.encode(build_openapi(app[keys.CATALOG], settings))
    app[keys.VALIDATORS] = InputValidators(app[keys.CATALOG], allowed_networks=settings.image_allowed_networks)
    app[keys.METRICS] = ApiMetrics()
    app.on_response_prepare.append(rate_limit_headers)  # RateLimit fields on errors and streams too
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(jobs_ctx)
    for module in (health, catalog, tools, jobs, batches, webhooks, payments, mcp, status, metrics, pages):
        app.add_routes(module.routes)
    app.router.add_get("/openapi.json", openapi_document)
    return app


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = BlockingConnectionPool.from_url(
        app[keys.SETTINGS].redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    app[keys.REDIS] = Redis(connection_pool=pool)
    yield
    await app[keys.REDIS].aclose()
    await pool.disconnect()


async def jobs_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    app[keys.JOBS] = JobStore(app[keys.REDIS], retention_s=settings.job_retention_s)
    app[keys.BATCHES] = BatchStore.from_settings(app[keys.REDIS], settings)
    app[keys.PAYMENTS] = PaymentStore(app[keys.REDIS], app[keys.SETTINGS])
    app[keys.API_KEYS] = ApiKeyStore(app[keys.REDIS])
    app[keys.X402] = X402Gate(app[keys.SETTINGS])
    app[keys.QUALITY] = QualityStore(app[keys.REDIS])
    app[keys.QUALITY].start()  # writes the 402s it counts every second
    settlements = SettlementStore(app[keys.REDIS])
    app[keys.GATE] = PaymentGate(
        settings, app[keys.CATALOG], app[keys.PAYMENTS], app[keys.X402], app[keys.METRICS], app[keys.QUALITY],
        settlements,
    )  # fmt: skip
    app[keys.CORE] = CallCore(settings, app[keys.GATE], app[keys.JOBS], app[keys.REDIS], app[keys.METRICS])
    reconciler = Reconciler(app[keys.CORE], app[keys.GATE], settlements, retention_ms=settings.job_retention_s * 1000)
    reconciler.start()  # ends every x402 payment left settling, in whichever API process gets to it first
    app[keys.WAITER] = JobWaiter(app[keys.REDIS], app[keys.JOBS])
    await app[keys.WAITER].start()
    yield
    await reconciler.stop()
    await app[keys.WAITER].stop()
    await app[keys.QUALITY].stop()
    await app[keys.X402].aclose()


async def openapi_document(request: web.Request) -> web.Response:
    return json_bytes_response(request.app[keys.OPENAPI])
