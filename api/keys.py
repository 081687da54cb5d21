"""Every typed application key of the API, nothing else."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from shared.catalog import Catalog
from shared.config import Settings
from shared.search import SearchIndex

SETTINGS = web.AppKey("settings", Settings)
CATALOG = web.AppKey("catalog", Catalog)
SEARCH = web.AppKey("search", SearchIndex)
REDIS = web.AppKey("redis", Redis)
OPENAPI = web.AppKey("openapi", bytes)

REQUEST_ID = web.RequestKey("request_id", str)
