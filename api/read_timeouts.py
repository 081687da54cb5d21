"""Read timeouts: a client gets a bounded time to send its request's headers, then its body (no slowloris).

Headers (`SERVER402_HEADER_READ_TIMEOUT_S`): aiohttp's keep-alive timer is that timeout, so it is set to it. In the
aiohttp we run (3.14.5; aio-libs/aiohttp#13681) the timer is armed when a connection is made and again when each
response has been written; when it fires while the connection still waits for its next request (no complete request
line and headers parsed yet: idle, or headers trickling in) the connection is closed. It does nothing while a request
is being handled. `handler_args` carries it to every server of the app: `run_app` in `python -m api` (its own
`keepalive_timeout` argument is overridden) and the test servers. An idle keep-alive connection is closed after the
same time: by the definition above it has not delivered its next request within that time either.

Bodies (`SERVER402_BODY_READ_TIMEOUT_S`): `body_read_deadline`, a middleware inside `request_context`, arms a timer
when a request whose body has not fully arrived reaches it. If the body is still incomplete when the timer fires, the
request's stream is failed with `BodyReadTimedOut`: the handler's `request.read()` or `request.content.iter_chunked()`
raises it, whichever route it is, and `request_context` answers 408 `request_timeout` with `Connection: close`. The
routes that read a body (tools, payments, batches, mcp) read all of it before they store or charge anything.
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
