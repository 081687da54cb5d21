"""Hostile input gets a clear JSON error with the right status and changes nothing: no job, payment or batch.

Oversize bodies, JSON nested 100,000 deep, malformed headers, huge query strings, unknown routes and methods,
bad content types; and image URLs that point inside the network (private, loopback, link-local, metadata
addresses) are refused before anything is queued, unless the operator allows that network.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import FREE_AND_FAST, Pipeline

from api.apikeys import ApiKeyStore
from api.app import create_app
from api.json_depth import NESTED_TOO_DEEPLY
from shared import keys
from shared.config import ConfigError, Settings

PRICED = "face-comparison"
DEEP = 100_000
MAX_BODY = 256 * 1024  # room for 100,000 nested arrays (200 kB)
BATCH_MAX = 1024 * 1024


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {**FREE_AND_FAST, "services": {PRICED: {"amountCents": 20}}}


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    # Small limits keep the oversize bodies small; an allowed network that is not loopback, so the sandbox's own
    # loopback images are refused here as any private address is where the operator has not allowed it.
    return {
        "SERVER402_MAX_BODY_BYTES": str(MAX_BODY),
        "SERVER402_BATCH_MAX_BYTES": str(BATCH_MAX),
        "SERVER402_IMAGE_ALLOWED_NETWORKS": "10.0.0.0/8",
    }


async def stored_nothing(pipeline: Pipeline) -> None:
    """No job, batch, payment, idempotency key, x402 nonce, webhook delivery or ledger entry, nothing queued."""
    patterns = ("job", "batch", "pay", "idem", "x402", "wh", "ledger")
    stored = [key for pattern in patterns async for key in pipeline.redis.scan_iter(f"{keys.PREFIX}:{pattern}*")]
    assert stored == []
    for queue in (keys.QUEUE_NAME, keys.BATCH_QUEUE_NAME):
        assert [job for job in await pipeline.redis.zrange(queue, 0, -1) if job.startswith(b"job_")] == []
    assert (await pipeline.sandbox.stats())["totals"]["calls"] == 0


async def answer(response: Any) -> tuple[int, dict[str, Any]]:
    assert response.content_type == "application/json", await response.text()
    body = await response.json()
    if "jsonrpc" not in body:
        assert body["requestId"] == response.headers["X-Request-ID"]
    return response.status, body


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# ---------------------------------------------------------------- bodies


async def post(pipeline: Pipeline, path: str, value: Any, *, chunked: bool = False, **headers: str) -> Any:
    """POST `value` as JSON; `chunked`: without a Content-Length, so a limit must hold while reading."""
    raw = msgspec.json.encode(value)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 65_536):
            yield raw[start : start + 65_536]

    data: Any = pieces() if chunked else io.BytesIO(raw)
    return await pipeline.api.post(path, data=data, headers={"Content-Type": "application/json", **headers})


async def test_oversize_bodies_are_413_and_batches_have_their_own_larger_limit(pipeline: Pipeline) -> None:
    padding = "A" * MAX_BODY
    refused = [
        await post(pipeline, f"/api/tools/{PRICED}", {"ImageURLA": padding}),
        await post(pipeline, f"/api/tools/{PRICED}", {"ImageURLA": padding}, chunked=True),
        await post(pipeline, "/api/payments", {"serviceId": PRICED, "providerId": padding}),
        await post(pipeline, "/api/payments", {"serviceId": PRICED, "providerId": padding}, chunked=True),
        await post(pipeline, "/api/batches", [{"customId": "a", "serviceId": "x", "input": {"p": "A" * BATCH_MAX}}]),
        await post(pipeline, "/api/batches", [{"customId": "a", "serviceId": "x", "input": {"p": "A" * BATCH_MAX}}],
                   chunked=True),
    ]  # fmt: skip
    for response in refused:
        status, body = await answer(response)
        assert (status, body["code"]) == (413, "payload_too_large")
    assert str(BATCH_MAX) in body["error"]
    await stored_nothing(pipeline)
    # a batch larger than a single call's limit is read (and checked item by item), not refused for its size
    items = [{"customId": f"c{i}", "serviceId": "no-such-service", "input": {"p": "x" * 2000}} for i in range(200)]
    assert MAX_BODY < len(msgspec.json.encode(items)) < BATCH_MAX
    status, body = await answer(await post(pipeline, "/api/batches", items))
    assert (status, body["code"], body["invalidCount"]) == (422, "invalid_batch", 200)
    await stored_nothing(pipeline)


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/api/tools/face-detection", "application/json", nested(DEEP)),
        ("/api/tools/face-detection", "application/json", b'{"ImageURL": ' + nested(DEEP) + b"}"),
        ("/api/payments", "application/json", b'{"serviceId": ' + nested(DEEP) + b"}"),
        ("/api/batches", "application/json", nested(DEEP)),
        ("/api/batches", "application/json", b'{"items": [{"customId": "a", "input": ' + nested(DEEP) + b"}]}"),
    ],
)
async def test_json_nested_100000_deep_is_a_400_not_a_crash(
    pipeline: Pipeline, path: str, content_type: str, body: bytes
) -> None:
    response = await pipeline.api.post(path, data=io.BytesIO(body), headers={"Content-Type": content_type})
    status, answered = await answer(response)
    assert (status, answered["code"], answered["error"]) == (400, "invalid_json", NESTED_TOO_DEEPLY)
    await stored_nothing(pipeline)


async def test_a_json_line_nested_100000_deep_is_an_item_error(pipeline: Pipeline) -> None:
    lines = b'{"customId": "a", "serviceId": "face-detection", "input": {}}\n' + nested(DEEP) + b"\n"
    response = await pipeline.api.post(
        "/api/batches", data=io.BytesIO(lines), headers={"Content-Type": "application/x-ndjson"}
    )
    status, answered = await answer(response)
    assert (status, answered["code"]) == (422, "invalid_batch")
    assert {"index": 1, "code": "invalid_json", "message": "this line is nested too deeply"} in answered["itemErrors"]
    await stored_nothing(pipeline)


async def test_deep_nesting_in_a_tasks_string_a_payment_header_and_mcp_is_refused_cleanly(pipeline: Pipeline) -> None:
    tasks = await pipeline.api.post(
        "/api/tools/face-liveness-detection",
        data=io.BytesIO(msgspec.json.encode({"Tasks": nested(DEEP).decode()})),
        headers={"Content-Type": "application/json"},
    )
    status, body = await answer(tasks)
    assert (status, body["error"]) == (400, "Tasks must be an array")
    # as deep as fits in one header line (8190 bytes): the x402 decoder refuses it as a malformed payment
    signature = base64.b64encode(nested(3000)).decode()
    call = {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}
    for header in ("PAYMENT-SIGNATURE", "X-PAYMENT"):
        status, body = await answer(await post(pipeline, f"/api/tools/{PRICED}", call, **{header: signature}))
        assert (status, body["code"]) == (402, "payment_malformed")
    mcp = await pipeline.api.post("/mcp", data=io.BytesIO(nested(DEEP)), headers={"Content-Type": "application/json"})
    status, body = await answer(mcp)
    assert (status, body["error"]) == (400, {"code": -32700, "message": f"Parse error: {NESTED_TOO_DEEPLY}"})
    await stored_nothing(pipeline)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/tools/face-detection", "text/plain"),
        ("/api/tools/face-detection", "multipart/form-data; boundary=x"),
        ("/api/payments", "application/x-www-form-urlencoded"),
        ("/api/batches", "text/csv"),
        ("/api/batches", "application/xml"),
    ],
)
async def test_bad_content_types_are_415(pipeline: Pipeline, path: str, content_type: str) -> None:
    response = await pipeline.api.post(
        path, data=b'{"serviceId": "face-comparison"}', headers={"Content-Type": content_type}
    )
    status, body = await answer(response)
    assert (status, body["code"]) == (415, "unsupported_media_type")
    await stored_nothing(pipeline)


# ---------------------------------------------------------------- headers


async def test_malformed_credentials_are_401_with_nothing_charged(pipeline: Pipeline) -> None:
    _, good_key = await ApiKeyStore(pipeline.redis).create("hostile", None, 1000, 1000)
    bad_credentials = [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer " + "x" * 7000},
        {"Authorization": "Bearer " + good_key + "x"},
        {"Authorization": good_key},
        {"X-API-Key": ""},
        {"X-API-Key": good_key[:-1]},
        {"X-API-Key": "' OR 1=1 --"},
        {"X-API-Key": good_key + "\u00a0"},  # a Unicode space is not HTTP's padding: not the key
        {"Authorization": "Bearer \u3000" + good_key},
    ]
    call = {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}
    requests = (("POST", f"/api/tools/{PRICED}", call), ("GET", "/api/webhooks/secret", None),
                ("POST", "/api/batches", []), ("POST", "/api/payments", {"serviceId": PRICED}))  # fmt: skip
    for headers in bad_credentials:
        for method, path, body in requests:
            response = await pipeline.api.request(method, path, json=body, headers=headers)
            status, answered = await answer(response)
            assert (status, answered["code"]) == (401, "invalid_api_key"), (headers, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    await stored_nothing(pipeline)


async def test_garbage_payment_tokens_and_signatures_are_402_and_charge_nothing(pipeline: Pipeline) -> None:
    call = {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}
    garbage = [
        {"X-Payment-Token": "not-a-token"},
        {"X-Payment-Token": "pt_" + "A" * 7000},
        {"X-Payment-Token": "pay_x.face-comparison.1.1.x.forged"},
        {"PAYMENT-SIGNATURE": "%%%not base64%%%"},
        {"PAYMENT-SIGNATURE": base64.b64encode(b"[1, 2]").decode()},
        {"PAYMENT-SIGNATURE": base64.b64encode(b'{"x402Version": 1}').decode()},
        {"PAYMENT-SIGNATURE": base64.b64encode(b'{"x402Version": 2, "payload": {}}').decode()},
        {"PAYMENT-SIGNATURE": base64.b64encode(b"\xff\xfe\xfd").decode()},
        {"X-PAYMENT": "A" * 7000},
    ]
    for headers in garbage:
        status, body = await answer(await pipeline.api.post(f"/api/tools/{PRICED}", json=call, headers=headers))
        assert status == 402 and body["error"] == "payment required", (headers, body)
        assert body["code"] in ("invalid_token", "payment_malformed", "unsupported_x402_version"), body
        status, body = await answer(
            await pipeline.api.post("/api/payments", json={"serviceId": PRICED}, headers=headers)
        )
        assert status == 402, (headers, body)
    await stored_nothing(pipeline)


async def test_bad_idempotency_keys_are_400_and_bad_prefer_headers_are_ignored(pipeline: Pipeline) -> None:
    call = {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}
    for key in ("", "k" * 256, "tab\there"):
        response = await pipeline.api.post(f"/api/tools/{PRICED}", json=call, headers={"Idempotency-Key": key,
                                           "X-Payment-Token": "unknown"})  # fmt: skip
        status, body = await answer(response)
        assert (status, body["error"]) == (400, "Idempotency-Key must be 1 to 255 printable characters"), key
    for prefer in ("wait=-1", "wait=abc", "wait=1e999", "wait=" + "9" * 400, "respond-async" * 50, ";;;,,,="):
        response = await pipeline.api.post(f"/api/tools/{PRICED}", json=call, headers={"Prefer": prefer})
        status, body = await answer(response)
        assert (status, body["code"]) == (402, "payment_required"), prefer  # the call goes on as if it were absent
    await stored_nothing(pipeline)


async def raw_request(pipeline: Pipeline, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Bytes on the wire (what no well-behaved client library would send); the status, headers and body."""
    server = pipeline.api.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


async def test_non_utf8_header_bytes_are_refused_as_credentials_and_ignored_elsewhere(pipeline: Pipeline) -> None:
    body = b'{"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}'
    for header in (b"X-API-Key: \xff\xfe\xc3(", b"Authorization: Bearer \x80\x81", b"X-Request-ID: \xe2\x82"):
        status, headers, answered = await raw_request(
            pipeline,
            b"POST /api/tools/face-comparison HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n" + header + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body,
        )  # fmt: skip
        assert headers["content-type"].startswith("application/json"), answered
        code = msgspec.json.decode(answered)["code"]
        assert (status, code) in ((401, "invalid_api_key"), (402, "payment_required")), (header, answered)
    await stored_nothing(pipeline)


async def test_huge_query_strings_and_headers_are_refused_and_the_server_goes_on(pipeline: Pipeline) -> None:
    """Up to aiohttp's 8190 bytes per request line and header the app answers in JSON; above that the HTTP parser
    refuses the request (400, plain text) before the app sees it. Either way nothing is stored."""
    call = {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": "https://example.com/b.jpg"}
    status, body = await answer(await post(pipeline, f"/api/tools/{PRICED}?webhook=" + "a" * 7000, call))
    assert (status, body["error"]) == (400, "webhook must be an http or https URL of at most 2048 characters")
    search = await pipeline.api.get("/api/catalog/search", params={"q": "face " * 1000})
    status, body = await answer(search)
    assert (status, body["code"]) == (400, "bad_request") and "q" in body["error"]
    for request in (
        b"GET /api/catalog/search?q=" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /api/catalog HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + b"k" * 20_000 + b"\r\n\r\n",
        b"GET /api/catalog HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(500))
        + b"\r\n",
    ):
        status, _, answered = await raw_request(pipeline, request)
        assert status == 400, answered
    assert (await pipeline.api.get("/healthz")).status == 200
    await stored_nothing(pipeline)


async def test_unknown_routes_and_methods_are_json_404_and_405(pipeline: Pipeline) -> None:
    for method, path in (
        ("GET", "/api/tools"),
        ("POST", "/api/nope"),
        ("GET", "/%00"),
        ("GET", "/api/jobs/" + "j" * 5000),
    ):
        status, body = await answer(await pipeline.api.request(method, path))
        assert status == 404 and body["code"] in ("not_found", "job_not_found"), path
    for method, path in (("PUT", "/api/tools/face-detection"), ("PATCH", "/api/payments"), ("DELETE", "/api/catalog"),
                         ("TRACE", "/api/batches"), ("POST", "/api/jobs/job_x")):  # fmt: skip
        status, body = await answer(await pipeline.api.request(method, path))
        assert (status, body["code"]) == (405, "method_not_allowed"), (method, path)
    status, body = await answer(await pipeline.api.post("/api/tools/no-such-tool", json={}))
    assert (status, body["code"]) == (404, "service_not_found")
    await stored_nothing(pipeline)


# ---------------------------------------------------------------- image URLs inside the network

PRIVATE_HOSTS = [
    "127.0.0.1",
    "127.1.2.3",
    "localhost",
    "images.localhost",
    "[::1]",
    "169.254.169.254",
    "100.100.100.200",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.10",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "0.0.0.0",
    "[::ffff:127.0.0.1]",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "127.0.0.1.",
]


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
async def test_an_image_url_on_a_private_address_is_refused_before_anything_runs(pipeline: Pipeline, host: str) -> None:
    status, body, _ = await pipeline.call("face-detection", {"ImageURL": f"http://{host}:8080/face.jpg"})
    assert (status, body["code"]) == (400, "validation_failed")
    assert body["error"].startswith("ImageURL must be a public http or https URL: ")
    assert body["error"].endswith("is a private, loopback or link-local address")
    await stored_nothing(pipeline)


async def test_every_url_parameter_is_checked_in_calls_batches_and_mcp(pipeline: Pipeline) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    cases = [
        ("face-liveness-detection", {"Tasks": [{"ImageURL": metadata}]}, "Tasks[0].ImageURL"),
        ("face-liveness-detection", {"Tasks": json.dumps([{"ImageURL": metadata}])}, "Tasks[0].ImageURL"),
        ("video-face-liveness-detection", {"VideoUrl": metadata}, "VideoUrl"),
        ("face-database-add-face", {"DbName": "d", "EntityId": "e", "ImageUrl": metadata}, "ImageUrl"),
        ("face-comparison", {"ImageURLA": "https://example.com/a.jpg", "ImageURLB": metadata}, "ImageURLB"),
    ]
    for tool, params, field in cases:
        status, body, _ = await pipeline.call(tool, params)
        assert (status, body["details"][0]["field"]) == (400, field), tool
        assert "169.254.169.254 is a private" in body["error"]
    items = [{"customId": "ok", "serviceId": "face-detection", "input": {"ImageURL": "https://example.com/a.jpg"}},
             {"customId": "inside", "serviceId": "face-detection", "input": {"ImageURL": metadata}}]  # fmt: skip
    status, body = await answer(await pipeline.api.post("/api/batches", json=items))
    assert (status, body["code"], body["invalidCount"]) == (422, "invalid_batch", 1)
    assert body["itemErrors"][0]["customId"] == "inside" and "169.254.169.254" in body["itemErrors"][0]["message"]
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "face_detection", "arguments": {"ImageURL": metadata}}}  # fmt: skip
    status, body = await answer(await pipeline.api.post("/mcp", json=call, headers={"Accept": "application/json"}))
    assert status == 200 and body["result"]["isError"]
    assert body["result"]["structuredContent"]["code"] == "validation_failed"
    await stored_nothing(pipeline)


async def test_allowed_networks_run_and_the_sandbox_never_fetches_a_private_non_loopback_url(
    pipeline: Pipeline,
) -> None:
    status, body, _ = await pipeline.call("face-detection", {"ImageURL": "http://10.1.2.3/face.jpg"})
    assert status == 200, body  # this module's operator allows 10.0.0.0/8
    wider = Settings.from_env(
        {"REDIS_URL": pipeline.settings.redis_url,
         "SERVER402_IMAGE_ALLOWED_NETWORKS": "192.168.0.0/16, 169.254.0.0/16, fc00::/7"}
    )  # fmt: skip
    async with TestClient(TestServer(create_app(wider, pipeline.catalog))) as api:
        for url in ("http://192.168.1.10/a.jpg", "http://169.254.169.254/a.jpg", "http://[fd00::1]:8080/a.jpg"):
            response = await api.post("/api/tools/face-detection", json={"ImageURL": url})
            assert response.status == 200, await response.text()
    stats = await pipeline.sandbox.stats()
    assert stats["actions"]["DetectFace"]["calls"] == 4
    assert stats["fetches"] == 0  # only loopback URLs are ever downloaded by the sandbox


async def test_with_the_sandbox_default_its_own_loopback_image_runs(pipeline: Pipeline) -> None:
    default = Settings.from_env({"REDIS_URL": pipeline.settings.redis_url})
    async with TestClient(TestServer(create_app(default, pipeline.catalog))) as api:
        response = await api.post("/api/tools/face-detection", json={"ImageURL": pipeline.sandbox.image("face.jpg")})
        assert response.status == 200, await response.text()
    assert (await pipeline.sandbox.stats())["fetches"] == 1


async def test_the_default_allows_the_sandboxs_loopback_images_and_nothing_for_aliyun() -> None:
    assert Settings.from_env({}).upstream.image_allowed_networks == ("127.0.0.0/8",)
    aliyun = {
        "SERVER402_UPSTREAM": "aliyun",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
        "SERVER402_X402_PAY_TO": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "SERVER402_TOKEN_SECRET": "t" * 32,
    }
    assert Settings.from_env(aliyun).upstream.image_allowed_networks == ()
    assert Settings.from_env(
        {**aliyun, "SERVER402_IMAGE_ALLOWED_NETWORKS": "10.0.0.0/8, fd00::/8"}
    ).upstream.image_allowed_networks == (
        "10.0.0.0/8",
        "fd00::/8",
    )
    with pytest.raises(ConfigError, match="SERVER402_IMAGE_ALLOWED_NETWORKS"):
        Settings.from_env({"SERVER402_IMAGE_ALLOWED_NETWORKS": "intranet"})
