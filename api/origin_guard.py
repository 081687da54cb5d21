"""DNS-rebinding and cross-site protection, before any handler runs (the streamable HTTP transport's rules, applied
to every route): an `Origin` must be allowed, and on a loopback listener the `Host` must name us.

The rules, and how /mcp is answered: docs/architecture.md, "Before any handler".
"""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api import errors
from api.appkeys import SETTINGS
from api.mcp_protocol import RpcError, error_response

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
ORIGIN_REFUSED = -32000  # the code the official TypeScript SDK answers a refused Origin or Host with


class Guard:
    """What the settings allow, worked out once per app."""

    def __init__(self, *, host: str, public_url: str, allowed_origins: tuple[str, ...]) -> None:
        self.origins = frozenset(filter(None, (origin_of(origin) for origin in allowed_origins)))
        public_host = (urlsplit(public_url).hostname or "").lower()
        self.hosts: frozenset[str] | None = LOOPBACK_NAMES | {public_host} if _is_loopback(host) else None

    def refusal(self, request: web.Request) -> str | None:
        """Why the request is refused, or None."""
        origins = request.headers.getall("Origin", ())
        if len(origins) > 1:
            return "more than one Origin header"
        if origins and origin_of(origins[0].strip()) not in self.origins:
            return "origin not allowed"
        host = request.headers.get("Host")
        if self.hosts is not None and host is not None and not _host_allowed(host, self.hosts):
            return "host not allowed"
        return None


@functools.lru_cache(maxsize=256)  # the few Host headers a server sees, each parsed once (anyone may send any: bounded)
def _host_allowed(host: str, hosts: frozenset[str]) -> bool:
    name = _hostname(host)
    if name is None or "@" in host:  # userinfo: no browser sends it, and it hides the name that was asked for
        return False
    return name in hosts or _is_loopback(name)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(origin: str) -> str | None:
    """An origin as browsers send it: lowercased, without the scheme's default port (None when it is not one)."""
    try:
        parts = urlsplit(origin.lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _hostname(host: str) -> str | None:
    """The name in a Host header (`name`, `name:port`, `[v6]:port`), lowercased; None when it is not one."""
    try:
        return urlsplit("//" + host.strip()).hostname
    except ValueError:
        return None


GUARD = web.AppKey("origin_guard", Guard)


def guard_for(app: web.Application) -> Guard:
    settings = app[SETTINGS]
    return Guard(
        host=settings.server.host,
        public_url=settings.server.public_url,
        allowed_origins=settings.server.allowed_origins,
    )


@web.middleware
async def origin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    reason = request.app[GUARD].refusal(request)
    if reason is None:
        return await handler(request)
    structlog.contextvars.bind_contextvars(refused=reason)
    if request.path == "/mcp":
        return error_response(RpcError(ORIGIN_REFUSED, f"Forbidden: {reason}", status=403))
    raise errors.Forbidden(f"forbidden: {reason}", code="origin_not_allowed")
