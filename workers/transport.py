"""The SDK's HTTP transport, with its connections kept: one aiohttp session per Upstream (workers/upstream.py).

The official SDKs build, sign and read every call (darabonba `DaraCore`, which both clients we use call as
`DaraCore.async_do_action(request, runtime)`), but their async transport opens a new aiohttp session for each call:
a new TCP connection, and for HTTPS a new SSL context, the CA bundle loaded again and a TLS handshake. Their own
synchronous transport keeps a session per host (`DaraCore._get_session`). Measured against the sandbox over HTTP
(bench/throughput.py's direct SDK step, 64 callers): 650 µs of the caller's CPU a call with a session each, 400 with
one kept.

`install()` (once per process, idempotent) puts `_do_action` in `DaraCore.async_do_action`'s place. It sends a call
on a kept session only when an Upstream made the call (`Pool.using`, a context variable: nothing else in the
process changes) and the call asks for nothing the kept session does not do the SDK's way: no proxy (the
runtime's or the environment's, which the SDK reads as it sends), no `ignoreSSL`, CA, client certificate or TLS
version of its own. Anything else goes to the SDK's own transport, unchanged. What a kept session does as the SDK
does: the URL, body and headers it built, its connect and read timeouts, the TLS checks (certifi's CA bundle, in
one context built once), an `IOError` (timeouts and refused or dropped connections) raised as its `RetryError`.
An idle connection is closed after aiohttp's keep-alive time (15 s), before an upstream's own is likely to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Iterator
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

_sdk_do_action = DaraCore.async_do_action
_pool: ContextVar[Pool | None] = ContextVar("server402_upstream_pool", default=None)


class Pool:
    """One Upstream's kept session (opened on its first call, in that call's event loop) and TLS context."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the session's
        self._tls: ssl.SSLContext | None = None
        self.calls = 0  # calls sent on the kept session

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        """SDK calls made inside go on this pool (the ones `keeps` accepts)."""
        token = _pool.set(self)
        try:
            yield
        finally:
            _pool.reset(token)

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # (a session of another loop is that loop's to close: an Upstream outliving its loop, in tests)
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=0)
            self._session, self._loop = aiohttp.ClientSession(connector=connector), loop
        return self._session

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            context.load_verify_locations(certifi.where())
            self._tls = context
        return self._tls

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # its loop is gone
                await self._session.close()
        self._session = None


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
    try:
        async with pool.session().request(
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
