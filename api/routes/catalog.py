"""Catalog, search and single-service answers.

Each service's `quality` carries the live figures (shared/quality.py), read in one Redis pipeline per request.
When Redis cannot answer within QUALITY_TIMEOUT_S the catalog still answers, with the static figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from api import errors
from api.appkeys import CATALOG, QUALITY, SEARCH
from api.responses import json_response
from api.search import MAX_QUERY_CHARS, SearchHit
from shared.clock import utc_iso
from shared.models import Service
from shared.payment_docs import CATALOG_PAYMENT

routes = web.RouteTableDef()

CATALOG_SCHEMA = "server402.catalog.v1"
SEARCH_SCHEMA = "server402.catalog.search.v1"
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
QUALITY_TIMEOUT_S = 0.5

log = structlog.get_logger("api.catalog")


@routes.get("/api/catalog")
async def list_catalog(request: web.Request) -> web.Response:
    services = await live(request, request.app[CATALOG].services)
    return json_response(
        {
            "schemaVersion": CATALOG_SCHEMA,
            "generatedAt": utc_iso(),
            "total": len(services),
            "services": services,
            "payment": CATALOG_PAYMENT,
        }
    )


@routes.get("/api/catalog/search")
async def search_catalog(request: web.Request) -> web.Response:
    query = _query_text(request)
    limit = _limit(request)
    category = request.query.get("category", "").strip() or None
    result = request.app[SEARCH].search(query, limit=limit, category=category)
    services = await live(request, [hit.service for hit in result.hits])
    filters: dict[str, Any] = {"limit": limit}
    if category:
        filters["category"] = category
    return json_response(
        {
            "schemaVersion": SEARCH_SCHEMA,
            "generatedAt": utc_iso(),
            "query": result.query,
            "expandedTerms": result.expanded_terms,
            "filters": filters,
            "total": result.total,
            "services": [_hit_body(hit, service) for hit, service in zip(result.hits, services, strict=True)],
            "payment": CATALOG_PAYMENT,
        }
    )


@routes.get("/api/services/{service_id}")
async def get_service(request: web.Request) -> web.Response:
    key = request.match_info["service_id"]
    service = request.app[CATALOG].resolve(key)
    if service is None:
        raise errors.ServiceNotFound(f"service {key[:100]!r} not found; see /api/catalog")
    structlog.contextvars.bind_contextvars(service_id=service.id)
    return json_response((await live(request, [service]))[0])


async def live(request: web.Request, services: Sequence[Service]) -> list[Service]:
    """The services with their live quality figures; the static ones when Redis cannot answer."""
    if not services:
        return []
    try:
        figures = await asyncio.wait_for(
            request.app[QUALITY].snapshot([service.id for service in services]), QUALITY_TIMEOUT_S
        )
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("live quality unavailable; answering the static figures", error=type(exc).__name__)
        return list(services)
    return [msgspec.structs.replace(service, quality=figures[service.id]) for service in services]


def _hit_body(hit: SearchHit, service: Service) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(service)
    body["matchScore"] = hit.score
    body["matchTerms"] = hit.terms
    body["why"] = hit.why
    return body


def _query_text(request: web.Request) -> str:
    """q, refused when longer than the search reads (the search bounds its own work as well)."""
    query = request.query.get("q", "")
    if len(query) > MAX_QUERY_CHARS:
        raise errors.BadRequest(f"q must be at most {MAX_QUERY_CHARS} characters")
    return query.strip()


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "")
    if raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise errors.BadRequest(f"limit must be an integer between 1 and {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.BadRequest(f"limit must be an integer between 1 and {MAX_LIMIT}")
    return limit
