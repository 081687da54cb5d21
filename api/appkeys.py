"""Every typed application key of the API, nothing else."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from api.apikeys import ApiKeyStore
from api.callcore.calls import CallCore
from api.callcore.gate import PaymentGate
from api.callcore.x402_gate import X402Gate
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

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", Catalog)
SEARCH = web.AppKey("search", SearchIndex)
REDIS = web.AppKey("redis", Redis)
OPENAPI = web.AppKey("openapi", bytes)
VALIDATORS = web.AppKey("validators", InputValidators)
JOBS = web.AppKey("jobs", JobStore)
BATCHES = web.AppKey("batches", BatchStore)
WAITER = web.AppKey("waiter", JobWaiter)
PAYMENTS = web.AppKey("payments", PaymentStore)
API_KEYS = web.AppKey("api_keys", ApiKeyStore)
X402 = web.AppKey("x402", X402Gate)
QUALITY = web.AppKey("quality", QualityStore)
METRICS = web.AppKey("metrics", ApiMetrics)
GATE = web.AppKey("gate", PaymentGate)
CORE = web.AppKey("core", CallCore)

REQUEST_ID = web.RequestKey("request_id", str)
