"""The web pages: catalog search (`/`), one service (`/services/{id}`), the status dashboard (`/status`).

Pages are HTML filled on the server from the catalog (every value escaped, `api/web/templating.py`); live data
comes from the JSON API through the pages' own scripts (`/api/catalog/search`, `/api/services/{id}`,
`/api/status`), fetched by relative URL. Their CSS, JS and icon are served from `api/web/static/` by
`/static/{name}`. Nothing is loaded from another origin, and the Content-Security-Policy says so.
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from aiohttp import web

from api.appkeys import CATALOG, SETTINGS
from api.web import service_view
from api.web.assets import asset_url, assets
from api.web.templating import Markup, html, join, render

routes = web.RouteTableDef()

STATUS_REFRESH_S = 10
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
NAV = (("/", "Catalog"), ("/status", "Status"))


@routes.get("/")
async def catalog_page(request: web.Request) -> web.Response:
    categories = sorted({service.category for service in request.app[CATALOG]})
    chosen = request.query.get("category", "")
    options = [html("<option value=''>All categories</option>")]
    options += [
        html("<option value='{0}'{1}>{0}</option>", name, Markup(" selected") if name == chosen else "")
        for name in categories
    ]
    content = render(
        "catalog",
        total=len(request.app[CATALOG]),
        query=request.query.get("q", "")[:256],
        category_options=join(options),
    )
    return page("Catalog", content, path="/", script="catalog.js")


@routes.get("/services/{service_id}")
async def service_page(request: web.Request) -> web.Response:
    key = request.match_info["service_id"]
    service = request.app[CATALOG].resolve(key)
    if service is None:
        content = render("not_found", key=key[:100], query=quote(key[:100]))
        return page("Service not found", content, path=request.path, status=404)
    structlog.contextvars.bind_contextvars(service_id=service.id)
    content = service_view.service_page(service, request.app[SETTINGS].server.public_url.rstrip("/"))
    return page(f"{service.name} · {service.name_zh}", content, path=request.path, script="service.js")


@routes.get("/status")
async def status_page(request: web.Request) -> web.Response:
    content = render("status", refresh_s=STATUS_REFRESH_S, refresh_ms=STATUS_REFRESH_S * 1000)
    return page("Status", content, path="/status", script="status.js")


@routes.get("/static/{name}")
async def static_file(request: web.Request) -> web.StreamResponse:
    asset = assets().get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    cache_control = IMMUTABLE if request.query.get("v") == asset.version else REVALIDATE
    headers = {"ETag": asset.etag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    if _etags(request.headers.get("If-None-Match", "")) & {asset.etag, "*"}:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, content_type=asset.content_type, charset=asset.charset, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def page(title: str, content: Markup, *, path: str, script: str | None = None, status: int = 200) -> web.Response:
    nav = join(
        [
            html("<li><a href='{}'{}>{}</a></li>", href, Markup(" aria-current='page'") if href == path else "", label)
            for href, label in NAV
        ]
    )
    names = ("format.js", script) if script else ()
    scripts = join([html("<script src='{}' defer></script>", asset_url(name)) for name in names])
    body = render(
        "base",
        title=title,
        favicon=asset_url("favicon.svg"),
        stylesheet=asset_url("site.css"),
        scripts=scripts,
        nav=nav,
        content=content,
    )
    headers = {**SECURITY_HEADERS, "Cache-Control": REVALIDATE}
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=headers)
