"""The SDK's HTTP transport, with its connections kept: one aiohttp session per Upstream (workers/upstream.py).

The official SDKs build, sign and read every call (darabonba `DaraCore`, which both clients we use call as
`DaraCore.async_do_action(request, runtime)`), but their async transport opens a new aiohttp session for each call:
a new TCP connection, and for HTTPS a new SSL context, the CA bundle loaded again and a TLS handshake. Their own
synchronous transport keeps a session per host (`DaraCore._get_session`). Measured against the sandbox over HTTP
(bench/upstream_transport.py, 64 calls at once): the caller's CPU per call with a session kept 0.48-0.59 of the
SDK's own.

`install()` (once per process, idempotent) puts `_do_action` in `DaraCore.async_do_action`'s place. It sends a call
on a kept session only when an Upstream made the call (`Pool.using`, a context variable: nothing else in the
process changes) and the call asks for nothing the kept session does not do the SDK's way: no proxy (the
runtime's or the environment's, which the SDK reads as it sends), no `ignoreSSL`, CA, client certificate or TLS
version of its own. Anything else goes to the SDK's own transport, unchanged. What a kept session does as the SDK
does: the URL, body and headers it built, its connect and read timeouts, the TLS checks (certifi's CA bundle, in
one context built once), an `IOError` (timeouts and refused or dropped connections) raised as its `RetryError`,
no cookie kept from one call to the next. An idle connection is closed after KEEPALIVE_S, and a session serves
new calls for SESSION_MAX_AGE_S (`Pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

import aiohttp
import certifi
from darabonba.core import DaraCore
from darabonba.exceptions import RetryError
from darabonba.request import DaraRequest
from darabonba.response import DaraResponse
from darabonba.utils.stream import BaseStream

DEFAULT_CONNECT_TIMEOUT_MS = 5000  # the SDK's (darabonba.core)
DEFAULT_READ_TIMEOUT_MS = 10000
# runtime options the SDK's transport honours and a kept session does not: such a call goes the SDK's way
OWN_TRANSPORT_OPTIONS = ("httpProxy", "httpsProxy", "ignoreSSL", "ca", "cert", "key", "tlsMinVersion")
PROXY_ENV = {"HTTP": ("HTTP_PROXY", "http_proxy"), "HTTPS": ("HTTPS_PROXY", "https_proxy")}
# An idle kept connection is closed after this long: shorter than load balancers' usual idle timeouts (Alibaba's is
# not measured here), so the server rarely closes one just as a call goes on it
# (a request sent on a connection the server is closing fails, and the job's retry sends it again)
KEEPALIVE_S = 4.0
SESSION_MAX_AGE_S = 300.0  # then new calls go on a new session (Pool)

_sdk_do_action = DaraCore.async_do_action
_pool: ContextVar[Pool | None] = ContextVar("server402_upstream_pool", default=None)


class _Session:
    """A kept session, its loop, when it opened and how many calls it carries now."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=KEEPALIVE_S)
        # no cookie jar: the SDK's session per call never sends a cookie back, and one kept for every tenant must not
        self.http = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        self.loop = loop
        self.opened = time.monotonic()
        self.in_flight = 0


class Pool:
    """One Upstream's kept session (opened on its first call, in that call's event loop) and TLS context.

    A session serves new calls for SESSION_MAX_AGE_S, then a new one takes them: a busy connection is never idle
    long enough to close, and a new one looks the host up again (a changed or drained upstream address). The one
    it replaces closes once its last call is answered. `close` closes them all; a call after it opens a new one."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._current: _Session | None = None
        self._retired: list[_Session] = []
        self._tls: ssl.SSLContext | None = None
        self.calls = 0  # calls sent on a kept session
        self.sessions = 0  # sessions opened

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        """SDK calls made inside go on this pool (the ones `keeps` accepts)."""
        token = _pool.set(self)
        try:
            yield
        finally:
            _pool.reset(token)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[aiohttp.ClientSession]:
        """The session a call goes on, for the length of that call."""
        held = await self._take()
        held.in_flight += 1
        try:
            yield held.http
        finally:
            held.in_flight -= 1
            if held.in_flight == 0 and held in self._retired:
                self._retired.remove(held)
                await held.http.close()

    async def _take(self) -> _Session:
        loop = asyncio.get_running_loop()
        old = self._current
        live = old is not None and old.loop is loop and not old.http.closed
        if old is not None and live and time.monotonic() - old.opened < SESSION_MAX_AGE_S:
            return old
        fresh = self._current = _Session(self._limit, loop)  # (set before any await: calls meanwhile take it)
        self.sessions += 1
        # (a session of another loop is that loop's to close: an Upstream outliving its loop, in tests)
        if old is not None and live:
            if old.in_flight:
                self._retired.append(old)  # closed by its last call
            else:
                await old.http.close()
        return fresh

    def _sessions(self) -> list[_Session]:
        """The current session and those closing once their calls end."""
        return [*self._retired, *([self._current] if self._current is not None else [])]

    def open_sessions(self) -> int:
        """Sessions not closed yet."""
        return sum(not session.http.closed for session in self._sessions())

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            context.load_verify_locations(certifi.where())
            self._tls = context
        return self._tls

    async def close(self) -> None:
        """Close every session of this loop now (calls still on them fail as a dropped connection would)."""
        loop = asyncio.get_running_loop()
        held = self._sessions()
        self._current, self._retired = None, []
        for session in held:
            if session.loop is loop and not session.http.closed:
                await session.http.close()


def keeps(request: DaraRequest, runtime: dict[str, Any]) -> bool:
    """Whether a kept session sends this call as the SDK's transport would (see the module's docstring)."""
    protocol = str(request.protocol or "").upper()
    if protocol not in PROXY_ENV:
        return False
    if any(runtime.get(option) for option in OWN_TRANSPORT_OPTIONS):
        return False
    return not any(os.environ.get(name) for name in PROXY_ENV[protocol])


async def _do_action(request: DaraRequest, runtime_option: dict[str, Any] | None = None) -> DaraResponse:
    runtime = runtime_option or {}
    pool = _pool.get()
    if pool is None or not keeps(request, runtime):
        return await _sdk_do_action(request, runtime_option)
    connect_ms = runtime.get("connectTimeout") or runtime.get("timeout") or DEFAULT_CONNECT_TIMEOUT_MS
    read_ms = runtime.get("readTimeout") or runtime.get("timeout") or DEFAULT_READ_TIMEOUT_MS
    timeout = aiohttp.ClientTimeout(sock_read=int(read_ms) / 1000, sock_connect=int(connect_ms) / 1000)
    tls: ssl.SSLContext | bool = pool.tls() if str(request.protocol).upper() == "HTTPS" else False
    pool.calls += 1
    async with pool.session() as http:
        try:
            async with http.request(
                request.method,
                DaraCore.compose_url(request),
                data=_body(request.body),
                headers=request.headers,
                ssl=tls,
                timeout=timeout,
            ) as response:
                answer = DaraResponse()
                answer.body = await response.read()
                answer.headers = {k.lower(): v for k, v in response.headers.items()}
                answer.status_code = response.status
                answer.status_message = response.reason
                answer.response = response
        except OSError as exc:  # (IOError: what the SDK's transport turns into its RetryError)
            raise RetryError(str(exc)) from exc
    return answer


def _body(body: Any) -> bytes:
    if isinstance(body, BaseStream):
        return b"".join(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return body or b""


def install() -> None:
    """Route the SDK's async calls through `_do_action` (once per process; calls outside `Pool.using` are the SDK's)."""
    if DaraCore.async_do_action is not _do_action:
        DaraCore.async_do_action = staticmethod(_do_action)
