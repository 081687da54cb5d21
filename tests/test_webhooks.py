"""Webhooks end to end: real workers send signed deliveries to a receiver on loopback (allowed here explicitly);
the signatures are checked with the Standard Webhooks reference library and with a few lines of hashlib."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from structlog.testing import capture_logs
from support import Pipeline

from api.apikeys import ApiKeyStore
from sandbox.testing import serve_on_loopback
from shared.config import Settings
from shared.webhooks import WebhookRefused, check_target
from workers.webhooks import GuardedResolver

RETRY_BASE_S = 0.05


@pytest.fixture
def pipeline_env() -> dict[str, str]:
    return {
        "SERVER402_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receiver runs on loopback
        "SERVER402_WEBHOOK_RETRY_BASE_S": str(RETRY_BASE_S),
        "SERVER402_WEBHOOK_MAX_ATTEMPTS": "4",
    }


@dataclass
class Receiver:
    url: str
    fail_first: int = 0  # answer 500 to this many deliveries first
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)
    answered: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        headers, body = dict(request.headers), await request.read()
        status = 500 if len(self.answered) < self.fail_first else 204
        self.answered.append(status)
        if status == 204:
            self.received.append((headers, body))
            await self.arrived.put((headers, body))
        return web.Response(status=status)

    async def next(self, timeout_s: float = 10) -> tuple[dict[str, str], dict[str, Any]]:
        headers, body = await asyncio.wait_for(self.arrived.get(), timeout_s)
        return headers, json.loads(body)


@pytest.fixture
async def receiver() -> Any:
    receiver = Receiver(url="")
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with serve_on_loopback(app) as (address, _):
        receiver.url = f"http://{address}/hook"
        yield receiver


async def api_key(pipeline: Pipeline) -> str:
    _, plaintext = await ApiKeyStore(pipeline.redis).create("webhook tests", None, rate=1000, burst=1000)
    return plaintext


async def secret_of(pipeline: Pipeline, key: str) -> str:
    response = await pipeline.api.get("/api/webhooks/secret", headers={"X-API-Key": key})
    assert response.status == 200
    secret: str = (await response.json())["secret"]
    return secret


def by_hand(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks v1, written from the spec: HMAC-SHA256(base64-decoded secret, "id.timestamp.body")."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in headers["webhook-signature"].split(" "))


async def call_with_hook(pipeline: Pipeline, key: str, url: str, events: str | None = None) -> dict[str, Any]:
    params = {"webhook": url} | ({"webhookEvents": events} if events else {})
    response = await pipeline.api.post(
        "/api/tools/face-detection",
        params=params,
        json={"ImageURL": pipeline.sandbox.image("face.jpg")},
        headers={"X-API-Key": key, "Prefer": "respond-async"},
    )
    assert response.status == 202, await response.text()
    job: dict[str, Any] = await response.json()
    return job


# ---------------------------------------------------------------- delivery and signatures


async def test_a_finished_call_is_delivered_signed_and_verifies_independently(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    key = await api_key(pipeline)
    with capture_logs() as logs:
        job = await call_with_hook(pipeline, key, receiver.url)
        headers, payload = await receiver.next()
        await asyncio.sleep(0.2)  # the sender logs the attempt just after the receiver answered
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    [attempt] = [e for e in logs if e["event"] == "webhook delivery"]
    assert attempt["outcome"] == "delivered" and attempt["webhook_event"] == "job.succeeded"
    assert payload["type"] == "job.succeeded" and payload["data"]["jobId"] == job["jobId"]
    assert payload["data"]["result"]["data"]["Action"] == "DetectFace"
    assert headers["webhook-id"] == f"msg_{job['jobId']}.job.succeeded"

    secret = await secret_of(pipeline, key)
    _, body = receiver.received[0]
    assert Webhook(secret).verify(body, headers) == payload  # the reference implementation
    assert by_hand(secret, headers, body)
    assert not by_hand(secret, headers, body + b" ")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"succeeded", b"failed"), headers)
    other = await secret_of(pipeline, await api_key(pipeline))  # each client has its own secret
    assert other != secret and not by_hand(other, headers, body)

    response = await pipeline.api.get(f"/api/jobs/{job['jobId']}/deliveries", headers={"X-API-Key": key})
    [delivery] = (await response.json())["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["log"][0]["statusCode"] == 204
    assert (await pipeline.api.get(f"/api/jobs/{job['jobId']}/deliveries")).status == 404  # not without the key


async def test_a_failing_receiver_gets_the_same_delivery_again_until_it_answers(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    receiver.fail_first = 2
    key = await api_key(pipeline)
    job = await call_with_hook(pipeline, key, receiver.url)
    headers, _ = await receiver.next()
    assert receiver.answered == [500, 500, 204]
    assert Webhook(await secret_of(pipeline, key)).verify(receiver.received[0][1], headers)

    response = await pipeline.api.get(f"/api/jobs/{job['jobId']}/deliveries", headers={"X-API-Key": key})
    [delivery] = (await response.json())["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [entry["statusCode"] for entry in delivery["log"]] == [500, 500, 204]


async def test_a_receiver_that_never_answers_is_given_up_after_the_last_attempt(pipeline: Pipeline) -> None:
    key = await api_key(pipeline)
    dead = "http://127.0.0.1:9/hook"  # discard port: nothing listens
    job = await call_with_hook(pipeline, key, dead)
    path = f"/api/jobs/{job['jobId']}/deliveries"
    for _ in range(200):
        [delivery] = (await (await pipeline.api.get(path, headers={"X-API-Key": key})).json())["deliveries"] or [{}]
        if delivery.get("status") == "failed":
            break
        await asyncio.sleep(0.05)
    assert delivery["status"] == "failed" and delivery["attempts"] == 4
    assert all(entry["error"].startswith("ClientConnectorError") for entry in delivery["log"])


async def test_the_event_filter_chooses_what_is_sent(pipeline: Pipeline, receiver: Receiver) -> None:
    key = await api_key(pipeline)
    job = await call_with_hook(pipeline, key, receiver.url, events="job.started,job.failed")
    _, payload = await receiver.next()
    assert payload["type"] == "job.started" and payload["data"]["jobId"] == job["jobId"]
    await pipeline.job(job["jobId"], wait=5)
    response = await pipeline.api.get(f"/api/jobs/{job['jobId']}/deliveries", headers={"X-API-Key": key})
    assert [d["event"] for d in (await response.json())["deliveries"]] == ["job.started"]  # it succeeded: no more


async def test_a_rotated_secret_signs_next_to_the_previous_one(pipeline: Pipeline, receiver: Receiver) -> None:
    key = await api_key(pipeline)
    before = await secret_of(pipeline, key)
    response = await pipeline.api.post("/api/webhooks/secret/rotate", headers={"X-API-Key": key})
    rotated = await response.json()
    assert rotated["secret"] != before and rotated["version"] == 2 and rotated["previousValidUntil"]
    await call_with_hook(pipeline, key, receiver.url)
    headers, _ = await receiver.next()
    body = receiver.received[0][1]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert by_hand(rotated["secret"], headers, body) and by_hand(before, headers, body)
    assert Webhook(rotated["secret"]).verify(body, headers) and Webhook(before).verify(body, headers)


async def test_a_batch_sends_one_completed_event_and_per_item_events_when_asked(
    pipeline: Pipeline, receiver: Receiver
) -> None:
    key = await api_key(pipeline)
    face = pipeline.sandbox.image("face.jpg")
    items = [{"customId": f"w{i}", "serviceId": "face-detection", "input": {"ImageURL": face}} for i in range(3)]
    response = await pipeline.api.post(
        "/api/batches",
        json={"items": items, "webhook": receiver.url, "webhookEvents": ["batch.completed", "job.succeeded"]},
        headers={"X-API-Key": key},
    )
    assert response.status == 201, await response.text()
    batch = await response.json()
    assert batch["webhook"] == {"url": receiver.url, "events": ["batch.completed", "job.succeeded"]}
    arrived = [await receiver.next() for _ in range(4)]
    types = sorted(payload["type"] for _, payload in arrived)
    assert types == ["batch.completed", "job.succeeded", "job.succeeded", "job.succeeded"]
    completed = next(payload for _, payload in arrived if payload["type"] == "batch.completed")
    assert completed["data"]["batchId"] == batch["batchId"] and completed["data"]["requestCounts"]["succeeded"] == 3
    secret = await secret_of(pipeline, key)
    assert all(by_hand(secret, headers, body) for headers, body in receiver.received)
    response = await pipeline.api.get(f"/api/batches/{batch['batchId']}/deliveries", headers={"X-API-Key": key})
    assert [d["event"] for d in (await response.json())["deliveries"]] == ["batch.completed"]


# ---------------------------------------------------------------- refused: nothing is made


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),  # the cloud metadata address
        ("http://[::1]:8080/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("ftp://example.com/hook", "http or https"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("not a url", "http or https"),
    ],
)
async def test_webhook_targets_inside_the_network_or_malformed_are_refused(
    pipeline: Pipeline, url: str, why: str
) -> None:
    key = await api_key(pipeline)
    response = await pipeline.api.post(
        "/api/tools/face-detection",
        params={"webhook": url},
        json={"ImageURL": pipeline.sandbox.image("face.jpg")},
        headers={"X-API-Key": key},
    )
    assert response.status == 400 and why in (await response.json())["error"]
    assert await pipeline.redis.keys("s402:job:*") == []


async def test_webhooks_need_a_known_event_and_a_caller_to_sign_for(pipeline: Pipeline, receiver: Receiver) -> None:
    face = {"ImageURL": pipeline.sandbox.image("face.jpg")}
    response = await pipeline.api.post("/api/tools/face-detection", params={"webhook": receiver.url}, json=face)
    assert response.status == 400 and "API key, or a payment token" in (await response.json())["error"]
    key = await api_key(pipeline)
    response = await pipeline.api.post(
        "/api/tools/face-detection",
        params={"webhook": receiver.url, "webhookEvents": "job.exploded"},
        json=face,
        headers={"X-API-Key": key},
    )
    assert response.status == 400 and "unknown webhook event" in (await response.json())["error"]
    item = {"customId": "a", "serviceId": "face-detection", "input": face}
    for events in (5, {"job.succeeded": True}):  # a batch body checks its events like a call
        body = {"items": [item], "webhook": receiver.url, "webhookEvents": events}
        response = await pipeline.api.post("/api/batches", json=body, headers={"X-API-Key": key})
        assert response.status == 400 and "event names" in (await response.json())["error"]
    assert (await pipeline.api.get("/api/webhooks/secret")).status == 401
    assert await pipeline.redis.keys("s402:job:*") == []


def test_private_targets_are_refused_by_default_and_names_are_checked_after_resolution(settings: Settings) -> None:
    assert settings.webhooks.allowed_networks == ()
    for url in ("http://127.0.0.1/x", "http://localhost:8080/x", "http://[::ffff:127.0.0.1]/x"):
        with pytest.raises(WebhookRefused):
            check_target(url, ())
    assert check_target("https://hooks.example.com/x", ()) == "https://hooks.example.com/x"
    assert check_target("http://127.0.0.1/x", ("127.0.0.0/8",)) == "http://127.0.0.1/x"


async def test_the_senders_resolver_drops_addresses_webhooks_may_not_reach() -> None:
    with pytest.raises(OSError, match="private or loopback"):
        await GuardedResolver(()).resolve("localhost", 80)
    [allowed] = await GuardedResolver(("127.0.0.0/8",)).resolve("localhost", 80)
    assert allowed["host"] == "127.0.0.1"


async def test_an_mcp_tool_call_takes_a_webhook_too(pipeline: Pipeline, receiver: Receiver) -> None:
    key = await api_key(pipeline)
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    arguments = {
        "ImageURL": pipeline.sandbox.image("face.jpg"),
        "webhook": receiver.url,
        "webhookEvents": ["job.succeeded"],
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "face-detection", "arguments": arguments, "_meta": meta}}  # fmt: skip
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "face-detection",
               "Accept": "application/json, text/event-stream", "X-API-Key": key}  # fmt: skip
    response = await pipeline.api.post("/mcp", json=body, headers=headers)
    answer = await response.json()
    assert response.status == 200 and not answer["result"].get("isError"), answer
    _, payload = await receiver.next()
    assert payload["type"] == "job.succeeded" and payload["data"]["result"]["data"]["Action"] == "DetectFace"

    arguments["webhook"] = "http://10.0.0.1/hook"  # refused like over HTTP, as a tool error
    response = await pipeline.api.post("/mcp", json=body, headers=headers)
    answer = await response.json()
    assert answer["result"]["isError"] and "private or loopback" in json.dumps(answer)
