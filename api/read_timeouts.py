"""Read timeouts: a client gets a bounded time to send its request's headers, then its body (no slowloris).

Headers: aiohttp's keep-alive timer, set by `handler_args`; bodies: the `body_read_deadline` middleware (408).
How each works in the aiohttp we run: docs/architecture.md, "Before any handler".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.typedefs import Handler

from api import errors
from api.appkeys import SETTINGS
from shared.config import ServerSettings


class BodyReadTimedOut(errors.RequestTimeout, TimeoutError):
    """Set on a request's stream when its body is late. A TimeoutError too: after the 408, aiohttp's lingering read
    of the unread body meets it and closes the connection quietly (any other exception is logged as unhandled)."""


def handler_args(server: ServerSettings) -> Mapping[str, Any]:
    """Keyword arguments of every connection's `RequestHandler` (`web.Application(handler_args=...)`)."""
    return {"keepalive_timeout": server.header_read_timeout_s}


@web.middleware
async def body_read_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    body = request.content
    if body.is_eof():  # no body, or all of it is here already
        return await handler(request)
    timeout_s = request.app[SETTINGS].server.body_read_timeout_s
    timer = asyncio.get_running_loop().call_later(timeout_s, _expire, body, timeout_s)
    try:
        return await handler(request)
    finally:
        timer.cancel()


def _expire(body: StreamReader, timeout_s: float) -> None:
    if not body.is_eof():
        body.set_exception(BodyReadTimedOut(f"the request body did not arrive within {timeout_s:g} s"))
