"""Callers without an API key are limited per client address; limited answers carry the IETF RateLimit fields.

Each app here has its own small limits (the suite's settings make the anonymous limit too high to meet). The
limits are slow (one request per 10 s) so that no request is given back while a test runs, however slow the machine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from api.apikeys import ApiKeyStore
from api.app import create_app
from api.ratelimits import anonymous_rate_key, check_key_rate, parse_address, trusted_networks
from scripts.embedded_redis import EmbeddedRedis, free_port
from shared.catalog import Catalog
from shared.config import Settings

BURST = 3
SLOW = "0.1"  # requests per second: an interval of 10 s
WINDOW_S = 30  # BURST requests at one per 10 s
LOOPBACK = "127.0.0.1"
CLIENTS = ("198.51.100.7", "198.51.100.8", "198.51.100.9", "203.0.113.5", "2001:db8:1:2::/64", "198.51.100.20")

AppFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def limited(
    aiohttp_client,  # type: ignore[no-untyped-def]
    redis_server: EmbeddedRedis,
    catalog: Catalog,
    redis: Redis,
) -> AsyncIterator[AppFactory]:
    """An app with a small anonymous limit (more settings as keyword arguments), every address's limit fresh
    before and after (the suite's other apps share 127.0.0.1's limit key, with a generous limit)."""
    addresses = [anonymous_rate_key(address) for address in (LOOPBACK, *CLIENTS)]
    await redis.delete(*addresses)

    async def make(burst: int = BURST, **env: str) -> TestClient:
        settings = Settings.from_env(
            {"REDIS_URL": redis_server.url, "SERVER402_ANON_RATE": SLOW, "SERVER402_ANON_BURST": str(burst), **env}
        )
        return await aiohttp_client(create_app(settings, catalog))  # type: ignore[no-any-return]

    yield make
    await redis.delete(*addresses)


def fields(response: ClientResponse) -> tuple[str, str]:
    """The answer's RateLimit-Policy and RateLimit fields ("" when absent)."""
    return response.headers.get("RateLimit-Policy", ""), response.headers.get("RateLimit", "")


def remaining_and_reset(value: str, policy: str = "anon") -> tuple[int, int]:
    match = re.fullmatch(rf'"{policy}";r=(\d+);t=(\d+)', value)
    assert match, value
    return int(match.group(1)), int(match.group(2))


async def test_anonymous_callers_get_their_burst_then_429_with_retry_after_and_ratelimit_fields(
    limited: AppFactory,
) -> None:
    api = await limited()
    # t: the seconds until the whole quota is back (10 s per request used); with none left, until the next request
    for left, reset in ((2, 10), (1, 20), (0, 10)):
        response = await api.get("/api/catalog")
        assert response.status == 200
        policy, state = fields(response)
        assert policy == f'"anon";q={BURST};w={WINDOW_S}'
        assert remaining_and_reset(state)[0] == left
        assert reset - 1 <= remaining_and_reset(state)[1] <= reset
    refused = await api.get("/api/catalog")
    assert refused.status == 429
    body = await refused.json()
    assert body["code"] == "rate_limited" and body["requestId"] == refused.headers["X-Request-ID"]
    assert 9 <= int(refused.headers["Retry-After"]) <= 10
    policy, state = fields(refused)
    assert policy == f'"anon";q={BURST};w={WINDOW_S}'
    assert remaining_and_reset(state) == (0, int(refused.headers["Retry-After"]))


async def test_error_answers_and_mcp_carry_the_ratelimit_fields_too(limited: AppFactory) -> None:
    api = await limited(burst=10)
    missing = await api.get("/api/services/no-such-service")
    assert missing.status == 404
    assert remaining_and_reset(fields(missing)[1]) == (9, 10)
    unknown = await api.get("/api/no/such/route")
    assert unknown.status == 404 and remaining_and_reset(fields(unknown)[1])[0] == 8
    mcp = await api.post("/mcp", data=b"{}", headers={"Content-Type": "application/json", "Accept": "application/json"})
    assert mcp.status < 500 and remaining_and_reset(fields(mcp)[1])[0] == 7


async def test_clients_behind_a_trusted_proxy_are_limited_separately(limited: AppFactory) -> None:
    api = await limited(SERVER402_TRUSTED_PROXIES="127.0.0.1/32")

    async def status(forwarded: str) -> int:
        return (await api.get("/api/catalog", headers={"X-Forwarded-For": forwarded})).status

    assert [await status("198.51.100.7") for _ in range(BURST)] == [200] * BURST
    assert await status("198.51.100.7") == 429
    assert await status("::ffff:198.51.100.7") == 429  # the same client, as an IPv4-mapped IPv6 address
    assert await status("198.51.100.8") == 200  # another client
    assert await status("198.51.100.9, 127.0.0.1") == 200  # trusted hops are skipped from the right
    assert await status("203.0.113.5, 198.51.100.9") == 200  # the right-most untrusted entry is the client...
    assert await status("198.51.100.9, 198.51.100.7") == 429  # ...whatever it puts further left
    for host in ("2001:db8:1:2::1", "[2001:db8:1:2:aaaa::2]:443", "2001:db8:1:2::3"):  # IPv6: one limit per /64
        assert await status(host) == 200
    assert await status("2001:db8:1:2:ffff::9") == 429
    assert (await api.get("/api/catalog")).status == 200  # the proxy's own requests: its own limit


async def test_x_forwarded_for_is_ignored_when_the_peer_is_not_a_trusted_proxy(
    limited: AppFactory, redis: Redis
) -> None:
    for trusted in ("", "10.0.0.0/8,::1/128"):  # none, or proxies that are not the peer (127.0.0.1)
        await redis.delete(anonymous_rate_key(LOOPBACK))
        api = await limited(SERVER402_TRUSTED_PROXIES=trusted)
        statuses = [
            (await api.get("/api/catalog", headers={"X-Forwarded-For": f"198.51.100.{n}"})).status
            for n in range(BURST + 2)
        ]
        assert statuses == [200] * BURST + [429, 429], trusted  # a new address each time escapes nothing


async def raw_get(api: TestClient, path: bytes, header: bytes) -> tuple[int, bytes]:
    """Bytes on the wire that no client library would send; the status and the whole answer."""
    assert api.server.host is not None and api.server.port is not None
    reader, writer = await asyncio.open_connection(api.server.host, api.server.port)
    try:
        writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + header + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]), answer


GARBAGE = (
    b"\xff\xfe\xc3(",
    "ü, ∞, 名前".encode(),
    b"," * 7000,
    b"198.51.100.1," * 600,
    b"9" * 8000,
    b"[::1",
    b"[]:80",
    b"[zz::1]:443",
    b"999.1.1.1:99999",
    b"1.2.3.4:port",
    b"::ffff:",
    b"fe80::1%eth0",
    b" , ,\t, ",
    b"unknown, _hidden, 2001:db8::1",
)


async def test_garbage_in_x_forwarded_for_never_answers_5xx(limited: AppFactory) -> None:
    api = await limited(burst=1000, SERVER402_TRUSTED_PROXIES="127.0.0.1/32")
    for value in GARBAGE:
        status, answer = await raw_get(api, b"/api/catalog", b"X-Forwarded-For: " + value)
        assert status == 200, (value[:40], answer[:300])
    for refused in (b"1" * 9000, b"1.2.3.4\x00"):  # over 8190 bytes, a NUL: aiohttp's parser refuses them first
        status, _ = await raw_get(api, b"/api/catalog", b"X-Forwarded-For: " + refused)
        assert status == 400
    assert (await api.get("/healthz")).status == 200


async def test_an_entry_a_trusted_proxy_wrote_that_is_no_address_counts_as_the_proxy(limited: AppFactory) -> None:
    api = await limited(SERVER402_TRUSTED_PROXIES="127.0.0.1/32")
    values = ("junk", "198.51.100.20, junk", "unknown", "")  # each new text, but all one client: the proxy
    statuses = [(await api.get("/api/catalog", headers={"X-Forwarded-For": v})).status for v in values]
    assert statuses == [200] * BURST + [429]
    assert (await api.get("/api/catalog", headers={"X-Forwarded-For": "junk, 198.51.100.20"})).status == 200


def test_addresses_are_canonical() -> None:
    assert str(parse_address("::ffff:192.0.2.1")) == "192.0.2.1"
    assert str(parse_address(" [2001:DB8::1]:8080 ")) == "2001:db8::1"
    assert str(parse_address("192.0.2.1:443")) == "192.0.2.1"
    for bad in ("", "localhost", "1.2.3", "[1.2.3.4]x", "1" * 100, "\udcff1.2.3.4"):
        assert parse_address(bad) is None, bad
    assert trusted_networks(("10.0.0.0/8",)) is trusted_networks(("10.0.0.0/8",))  # parsed once


async def test_an_api_key_caller_gets_the_key_policy_and_no_anonymous_limit(limited: AppFactory, redis: Redis) -> None:
    api = await limited(burst=1)
    _, roomy = await ApiKeyStore(redis).create("roomy", None, 1000, 1000)
    for _ in range(5):  # far over the anonymous burst of 1
        response = await api.get("/api/catalog", headers={"X-API-Key": roomy})
        assert response.status == 200 and fields(response)[0] == '"key";q=1000;w=1'  # limited by the key
    assert (await api.get("/api/catalog", headers={"Authorization": f"Bearer {roomy}"})).status == 200
    assert (await api.get("/api/catalog", headers={"X-API-Key": "s402k_000000000000_nope"})).status == 200
    refused = await api.get("/api/catalog", headers={"X-API-Key": "s402k_000000000000_nope"})
    assert refused.status == 429  # a key that does not authenticate is no way around the limit
    assert fields(refused)[0] == '"anon";q=1;w=10'


async def test_check_key_rate_limits_by_the_key_once_per_request_and_sets_the_key_fields(
    aiohttp_client,  # type: ignore[no-untyped-def]
    settings: Settings,
    catalog: Catalog,
    redis: Redis,
) -> None:
    store = ApiKeyStore(redis)
    api_key, plaintext = await store.create("slow", None, 0.1, 2)

    async def probe(request: web.Request) -> web.Response:
        key = await store.authenticate(request.headers["X-API-Key"])
        assert key is not None
        await check_key_rate(request, key)
        await check_key_rate(request, key)  # identify may run more than once: the request is counted once
        return web.json_response({})

    app = create_app(settings, catalog)
    app.router.add_get("/api/probe", probe)
    api = await aiohttp_client(app)
    answers = [await api.get("/api/probe", headers={"X-API-Key": plaintext}) for _ in range(3)]
    assert [a.status for a in answers] == [200, 200, 429]
    assert {fields(a)[0] for a in answers} == {'"key";q=2;w=20'}
    assert [remaining_and_reset(fields(a)[1], "key")[0] for a in answers] == [1, 0, 0]
    assert 9 <= int(answers[2].headers["Retry-After"]) <= 10
    assert (await answers[2].json())["code"] == "rate_limited"
    assert api_key.id in (await redis.keys("s402:apikey:rl:*"))[0].decode()


async def test_routes_that_identify_a_key_answer_with_its_policy(limited: AppFactory, redis: Redis) -> None:
    api = await limited()
    _, plaintext = await ApiKeyStore(redis).create("listed", None, 5, 7)
    response = await api.get("/api/jobs/" + "0" * 32, headers={"X-API-Key": plaintext})
    assert response.status == 404
    assert fields(response)[0] == '"key";q=7;w=2'


async def test_health_metrics_and_pages_are_not_limited(limited: AppFactory) -> None:
    api = await limited(burst=1)
    for path in ("/healthz", "/healthz", "/openapi.json", "/", "/static/no-such-file", "/healthz"):
        response = await api.get(path)
        assert response.status < 500 and fields(response) == ("", ""), path
    first = await api.get("/api/catalog")  # the only request counted
    assert first.status == 200 and remaining_and_reset(fields(first)[1])[0] == 0


async def test_without_redis_the_catalog_still_answers_unlimited(aiohttp_client, catalog: Catalog) -> None:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SERVER402_ANON_BURST": "1"})
    api = await aiohttp_client(create_app(settings, catalog))
    for _ in range(3):
        response = await api.get("/api/catalog")
        assert response.status == 200 and fields(response) == ("", "")
