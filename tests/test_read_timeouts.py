"""Slow senders (slowloris) cannot hold connections: headers and bodies must arrive within bounded times.

Raw sockets on loopback against a real server: the app on an aiohttp test server, and once `python -m api` itself.
A connection that never completes its request line and headers is closed; a body that does not arrive in time is
answered 408 `request_timeout`, the connection closed and nothing stored; an ordinary keep-alive connection goes on
serving requests. The bounds waited for are generous multiples of the timeouts: what is checked is that the server
closes or answers, not how fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from processes import Deployment
from redis.asyncio import Redis

from api.app import create_app
from scripts.embedded_redis import EmbeddedRedis
from shared import keys
from shared.catalog import Catalog
from shared.config import Settings

TIMEOUT_S = 0.5
BOUND_S = 10 * TIMEOUT_S
TOOL = "face-detection"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Serve = Callable[..., Awaitable[int]]


@pytest.fixture
def serve(aiohttp_server, redis_server: EmbeddedRedis, catalog: Catalog) -> Serve:  # type: ignore[no-untyped-def]
    """Start the app with the given read timeouts on a free loopback port; its port."""

    async def start(header_s: float = TIMEOUT_S, body_s: float = TIMEOUT_S) -> int:
        settings = Settings.from_env(
            {
                "REDIS_URL": redis_server.url,
                "SERVER402_LOG_FORMAT": "json",
                "SERVER402_HEADER_READ_TIMEOUT_S": str(header_s),
                "SERVER402_BODY_READ_TIMEOUT_S": str(body_s),
            }
        )
        server: TestServer = await aiohttp_server(create_app(settings, catalog))
        assert server.port is not None
        return server.port

    return start


@contextlib.asynccontextmanager
async def connection(port: int) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    async with asyncio.timeout(BOUND_S):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    async with asyncio.timeout(BOUND_S):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").strip().split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


@contextlib.asynccontextmanager
async def dribbling(writer: asyncio.StreamWriter, every_s: float = 0.05) -> AsyncIterator[None]:
    """Send one more byte every `every_s` while the block runs: a sender that is slow, not silent."""

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(every_s)

    task = asyncio.create_task(dribble())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def get(path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post_head(path: str, length: int, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", f"Content-Length: {length}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def stored(redis: Redis) -> set[bytes]:
    """Jobs, batches, payments, idempotency keys, x402 nonces, webhook deliveries, ledger entries, queued jobs."""
    patterns = ("job", "batch", "pay", "idem", "x402", "wh", "ledger")
    found = {key for pattern in patterns async for key in redis.scan_iter(f"{keys.PREFIX}:{pattern}*")}
    queued = [*await redis.zrange(keys.QUEUE_NAME, 0, -1), *await redis.zrange(keys.BATCH_QUEUE_NAME, 0, -1)]
    return found | {job for job in queued if job.startswith(b"job_")}


# ---------------------------------------------------------------- headers


async def test_a_connection_that_never_sends_a_request_is_closed(serve: Serve) -> None:
    async with connection(await serve()) as (reader, _):
        assert await until_closed(reader) == b""


async def test_a_request_line_and_headers_that_trickle_in_are_cut_off(serve: Serve) -> None:
    async with connection(await serve()) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        async with dribbling(writer):
            assert await until_closed(reader) == b""  # closed without an answer, though bytes kept coming


async def test_a_keep_alive_connection_serves_requests_and_each_response_restarts_the_header_timeout(
    serve: Serve,
) -> None:
    header_s = 2.0
    async with connection(await serve(header_s=header_s)) as (reader, writer):
        for _ in range(6):  # 6 idle pauses of a quarter of the timeout: longer in all than one timeout
            writer.write(get())
            status, headers, body = await response(reader)
            assert (status, json.loads(body)) == (200, {"status": "ok"})
            assert headers.get("connection") != "close"
            await asyncio.sleep(header_s / 4)
        assert await until_closed(reader) == b""  # and idle for good, it is closed


async def test_the_header_timeout_does_not_cut_a_request_whose_body_is_being_read(serve: Serve) -> None:
    header_s = 0.3
    body = b'{"serviceId": "no-such-service"}'
    async with connection(await serve(header_s=header_s, body_s=60)) as (reader, writer):
        writer.write(post_head("/api/payments", len(body)))
        for start in range(0, len(body), 8):  # the body takes longer than the header timeout to arrive
            if start:
                await asyncio.sleep(header_s)
            writer.write(body[start : start + 8])
        status, _, answer = await response(reader)
        assert (status, json.loads(answer)["code"]) == (400, "unknown_service")
        writer.write(get())
        assert (await response(reader))[0] == 200


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"/api/tools/{TOOL}", {}),
        ("/api/payments", {}),
        ("/api/batches", {}),
        ("/mcp", {"Accept": "application/json, text/event-stream"}),
    ],
)
async def test_a_body_that_does_not_arrive_in_time_is_408_and_changes_nothing(
    serve: Serve, redis: Redis, path: str, headers: dict[str, str]
) -> None:
    before = await stored(redis)
    async with connection(await serve(header_s=60)) as (reader, writer):
        writer.write(post_head(path, 100_000, **headers) + b'{"serviceId": "')
        async with dribbling(writer):
            status, answer_headers, answer = await response(reader)
        body: dict[str, Any] = json.loads(answer)
        assert (status, body["code"]) == (408, "request_timeout")
        assert body["requestId"] == answer_headers["x-request-id"]
        assert answer_headers["connection"] == "close"
        assert await until_closed(reader) == b""
    assert await stored(redis) == before


async def test_a_stalled_body_is_408_and_the_connection_closes_without_an_error_logged(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    async with connection(await serve(header_s=60)) as (reader, writer):
        writer.write(post_head("/api/payments", 1000) + b'{"serviceId"')  # and then nothing
        status, _, answer = await response(reader)
        assert (status, json.loads(answer)["code"]) == (408, "request_timeout")
        assert await until_closed(reader) == b""
    # aiohttp reads what is left of the body after the answer; the timeout must end that read quietly
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


# ---------------------------------------------------------------- python -m api


async def test_the_api_process_closes_slow_headers_and_answers_slow_bodies_408(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    env = {
        "SERVER402_HEADER_READ_TIMEOUT_S": str(TIMEOUT_S),
        "SERVER402_BODY_READ_TIMEOUT_S": str(TIMEOUT_S),
        "SERVER402_LOG_FORMAT": "json",
        "SERVER402_LOG_LEVEL": "warning",
    }
    deployment = Deployment(tmp_path, redis_server, env)
    try:
        await deployment.start_api()
        async with connection(deployment.api_port) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            assert await until_closed(reader) == b"", deployment.logs()
        async with connection(deployment.api_port) as (reader, writer):
            writer.write(post_head("/api/payments", 1000) + b"{")
            status, _, answer = await response(reader)
            assert (status, json.loads(answer)["code"]) == (408, "request_timeout"), deployment.logs()
            assert await until_closed(reader) == b""
    finally:
        await deployment.close()
