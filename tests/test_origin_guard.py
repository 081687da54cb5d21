"""DNS-rebinding and cross-site protection (api/origin_guard.py, api/request_body.py): a foreign Origin is 403, a
loopback server checks Host, and JSON routes take only JSON, so a browser's cross-site "simple" request (no
preflight: text/plain, a form, no Content-Type) never reaches a handler. Nothing of a refused request is done."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.app import create_app
from api.origin_guard import Guard
from shared import keys
from shared.catalog import Catalog
from shared.config import ConfigError, Settings

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t"}}}  # fmt: skip
CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "face_detection", "arguments": {"ImageURL": "https://example.com/a.jpg"}}}  # fmt: skip
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


async def post_mcp(api: TestClient, body: Any, **headers: str) -> tuple[int, Any]:
    response = await api.post("/mcp", data=json.dumps(body), headers={**MCP_ACCEPT, **headers})
    return response.status, await response.json()


async def test_a_foreign_origin_is_refused_on_mcp_and_on_the_api(api: TestClient, settings: Settings) -> None:
    for origin in ("http://evil.example.com", "null", settings.server.public_url + ".evil.example.com"):
        status, answer = await post_mcp(api, INITIALIZE, **{"Content-Type": "application/json", "Origin": origin})
        assert (status, answer["error"]["code"], answer["id"]) == (403, -32000, None), origin
        response = await api.post("/api/tools/face-detection", json={}, headers={"Origin": origin})
        assert response.status == 403 and (await response.json())["code"] == "origin_not_allowed"
    response = await api.get("/api/catalog", headers={"Origin": "http://evil.example.com"})
    assert response.status == 403


async def test_the_public_urls_origin_and_requests_without_one_are_served(api: TestClient, settings: Settings) -> None:
    for headers in ({"Origin": settings.server.public_url}, {"Origin": settings.server.public_url.upper()}, {}):
        status, answer = await post_mcp(api, INITIALIZE, **{"Content-Type": "application/json", **headers})
        assert status == 200 and answer["result"]["serverInfo"]["name"] == "server402", headers


async def test_a_rebound_host_is_refused_when_listening_on_loopback(api: TestClient) -> None:
    """The conformance suite's dns-rebinding-protection scenario: Host and Origin of evil.example.com."""
    evil = {"Host": "evil.example.com", "Origin": "http://evil.example.com", "Content-Type": "application/json"}
    status, _ = await post_mcp(api, INITIALIZE, **evil)
    assert status == 403
    status, _ = await post_mcp(api, INITIALIZE, **{"Host": "evil.example.com:8402", "Content-Type": "application/json"})
    assert status == 403  # no Origin at all (a non-browser client behind a rebound name): Host alone decides
    for host in ("localhost:9", "127.0.0.1", "[::1]:8402"):
        status, _ = await post_mcp(api, INITIALIZE, **{"Host": host, "Content-Type": "application/json"})
        assert status == 200, host


def test_a_server_on_a_public_address_leaves_host_to_its_proxy() -> None:
    guard = Guard(host="0.0.0.0", public_url="https://api.example.com", allowed_origins=("https://app.example.com",))
    assert guard.hosts is None and guard.origins == {"https://app.example.com"}
    loopback = Guard(host="127.0.0.1", public_url="https://api.example.com", allowed_origins=())
    assert loopback.hosts is not None and "api.example.com" in loopback.hosts


def test_allowed_origins_are_origins() -> None:
    settings = Settings.from_env({"SERVER402_PUBLIC_URL": "https://Gateway.example.com/base"})
    assert settings.server.allowed_origins == ("https://gateway.example.com",)
    both = Settings.from_env({"SERVER402_ALLOWED_ORIGINS": "https://a.example, http://localhost:3000"})
    assert both.server.allowed_origins == ("https://a.example", "http://localhost:3000")
    for bad in ("a.example", "https://a.example/path", "ftp://a.example"):
        with pytest.raises(ConfigError, match="SERVER402_ALLOWED_ORIGINS"):
            Settings.from_env({"SERVER402_ALLOWED_ORIGINS": bad})


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_simple_requests_never_reach_a_json_handler(
    api: TestClient, redis: Any, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    skip = () if content_type else ("Content-Type",)  # else aiohttp's client sends application/octet-stream
    raw = json.dumps(CALL).encode()
    jobs_before = set(await redis.keys(keys.job_key("*")))  # the suite's Redis holds earlier tests' jobs
    response = await api.post("/mcp", data=raw, headers={**MCP_ACCEPT, **headers}, skip_auto_headers=skip)
    assert response.request_info.headers.get("Content-Type") == content_type
    assert response.status == 415 and (await response.json())["error"]["code"] == -32600
    for path, body in (("/api/tools/face-detection", b'{"ImageURL": "https://example.com/a.jpg"}'),
                       ("/api/payments", b'{"serviceId": "face-detection"}'),
                       ("/api/batches", b'[{"serviceId": "face-detection", "input": {}}]')):  # fmt: skip
        answer = await api.post(path, data=body, headers=headers, skip_auto_headers=skip)
        assert answer.status == 415, (path, await answer.text())
        assert (await answer.json())["code"] == "unsupported_media_type"
    assert set(await redis.keys(keys.job_key("*"))) == jobs_before


async def test_an_empty_post_needs_no_content_type(api: TestClient) -> None:
    response = await api.post("/api/tools/face-detection")  # a discovery probe: the terms
    assert response.status == 402


async def test_allowed_origins_setting_is_used(aiohttp_client: Any, settings: Settings, catalog: Catalog) -> None:
    import msgspec

    custom = msgspec.structs.replace(
        settings, server=msgspec.structs.replace(settings.server, allowed_origins=("https://app.example.com",))
    )
    api = await aiohttp_client(create_app(custom, catalog))
    status, _ = await post_mcp(
        api, INITIALIZE, **{"Content-Type": "application/json", "Origin": "https://app.example.com"}
    )
    assert status == 200
    status, _ = await post_mcp(
        api, INITIALIZE, **{"Content-Type": "application/json", "Origin": settings.server.public_url}
    )
    assert status == 403


async def test_every_loopback_name_is_a_loopback_host_and_userinfo_is_refused(api: TestClient) -> None:
    for host, wanted in (("[0:0:0:0:0:0:0:1]:8402", 200), ("127.0.0.2:8402", 200), ("LOCALHOST", 200),
                         ("evil.example.com@localhost", 403), ("localhost@evil.example.com", 403)):  # fmt: skip
        status, _ = await post_mcp(api, INITIALIZE, **{"Host": host, "Content-Type": "application/json"})
        assert status == wanted, host


def test_origins_compare_as_browsers_send_them() -> None:
    guard = Guard(
        host="0.0.0.0", public_url="https://api.example.com", allowed_origins=("https://App.example.com:443",)
    )
    assert guard.origins == {"https://app.example.com"}
