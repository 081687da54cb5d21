"""No secret ever reaches a log: a realistic session against the real processes (API, worker, sandbox upstream,
sandbox x402 facilitator) at debug level, then every line any of them wrote is searched for the Alibaba access key
secret, the API key, the bought payment token, the webhook secret and SERVER402_TOKEN_SECRET (whole, or any
12-character piece of them past the 4 characters the redaction shows)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from stack import PROJECT_ROOT, Stack
from x402_support import httpx_buyer

from scripts.embedded_redis import EmbeddedRedis

FREE = "face-detection"
PRICED = "face-attribute-recognition"
OPERATOR_TOML = f"""
[defaults]
amountCents = 20
qps = 1000

[services.{FREE}]
amountCents = 0
"""
ACCESS_KEY_SECRET = "alibaba-" + secrets.token_urlsafe(24)
TOKEN_SECRET = "token-secret-" + secrets.token_urlsafe(32)


@pytest.fixture
def stack(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Stack]:
    (tmp_path / "operator.toml").write_text(OPERATOR_TOML)
    env = {
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/12",  # a database of its own
        "SERVER402_OPERATOR_FILE": str(tmp_path / "operator.toml"),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "log-test-key-id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "SERVER402_TOKEN_SECRET": TOKEN_SECRET,
        "SERVER402_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "SERVER402_SANDBOX_QPS": "1000",
        "SERVER402_LOG_LEVEL": "debug",
        "SERVER402_SANDBOX_LOG_LEVEL": "debug",
        "SERVER402_FACILITATOR_LOG_LEVEL": "debug",
    }
    running = Stack(tmp_path, env, facilitator=True).start()
    yield running
    running.stop()


def create_api_key(stack: Stack) -> str:
    """`python -m api.admin keys create`: the key is printed this once, on stdout (its logs go to stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "api.admin", "keys", "create", "--name", "robot", "--rate", "1000", "--burst", "1000",
         "--json"],
        cwd=PROJECT_ROOT, env=stack.env, capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    (stack.directory / "admin.log").write_bytes(done.stderr)
    key: str = msgspec.json.decode(done.stdout)["key"]
    return key


def fragments(secret: str, *, start: int = 4) -> set[str]:
    """The secret and every 12-character piece of it from `start` on (redaction shows the first 4 characters)."""
    return {secret} | {secret[i : i + 12] for i in range(start, len(secret) - 11)}


async def test_a_whole_session_at_debug_level_logs_no_secret(stack: Stack) -> None:
    key = create_api_key(stack)
    with_key = {"Authorization": f"Bearer {key}"}
    face = {"ImageURL": stack.image("face.jpg")}
    delivered: asyncio.Queue[bytes] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await delivered.put(await request.read())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    async with (
        TestServer(receiver) as hooks,
        httpx_buyer(stack.url) as buyer,
        httpx.AsyncClient(base_url=stack.url) as http,
    ):
        bought = await buyer.post("/api/payments", json={"serviceId": PRICED, "calls": 5}, headers=with_key)
        assert bought.status_code == 201, bought.text
        token = bought.json()["token"]
        webhook_secret = (await http.get("/api/webhooks/secret", headers=with_key)).json()["secret"]
        rotated = (await http.post("/api/webhooks/secret/rotate", headers=with_key)).json()["secret"]
        await session(http, buyer, key, bought.json(), face, str(hooks.make_url("/hook")))
        await asyncio.wait_for(delivered.get(), timeout=15)  # the worker sent the signed webhook
    stack.stop()  # every process flushes and says goodbye
    logs = stack.logs() + (stack.directory / "admin.log").read_text()
    pieces = {
        "access key secret": fragments(ACCESS_KEY_SECRET),
        "token secret": fragments(TOKEN_SECRET),
        "API key": fragments(key),
        # a token is `pt_<paymentId>.<MAC>`: the payment id is public (it names the payment), the MAC is the secret
        "payment token": {token} | fragments(token.rsplit(".", 1)[1], start=0),
        "webhook secret": fragments(webhook_secret),
        "rotated webhook secret": fragments(rotated),
    }
    for name, secret_pieces in pieces.items():
        leaked = sorted(piece for piece in secret_pieces if piece in logs)
        assert leaked == [], f"the {name} is in the logs: {leaked[:3]}"
    assert '"event":"request"' in logs and "refused a malformed HTTP request" in logs  # the session was logged


async def session(
    http: httpx.AsyncClient,
    buyer: httpx.AsyncClient,
    key: str,
    payment: dict[str, Any],
    face: dict[str, str],
    hook: str,
) -> None:
    """Calls a user makes with the key, the token, an inline payment, MCP and a batch; and a few mistakes."""
    with_key, token = {"Authorization": f"Bearer {key}"}, payment["token"]
    assert (await http.post(f"/api/tools/{FREE}", json=face, headers={"X-API-Key": key})).status_code == 200
    paid = await http.post(f"/api/tools/{PRICED}", json=face, headers={**with_key, "X-Payment-Token": token},
                           params={"webhook": hook, "webhookEvents": "job.succeeded"})  # fmt: skip
    assert paid.status_code == 200, paid.text
    assert (await buyer.post(f"/api/tools/{PRICED}", json=face)).status_code == 200  # paid inline with x402
    shown = await http.get(f"/api/payments/{payment['paymentId']}", headers={"X-Payment-Token": token})
    assert shown.json()["token"] == token
    call: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": PRICED.replace("-", "_"), "arguments": {**face, "paymentToken": token}},
    }
    mcp = await http.post("/mcp", json=call, headers={**with_key, "Accept": "application/json"})
    assert mcp.status_code == 200 and not mcp.json()["result"].get("isError"), mcp.text
    batch = [{"customId": "one", "serviceId": PRICED, "input": face}]
    created = await http.post("/api/batches", json=batch, headers={**with_key, "X-Payment-Token": token})
    assert created.status_code == 201, created.text
    await http.get(f"/api/batches/{created.json()['batchId']}", params={"wait": "10"}, headers=with_key)
    # mistakes: a wrong key that contains the real one, a token for another service, an oversized credential
    assert (await http.get("/api/webhooks/secret", headers={"X-API-Key": key + "x"})).status_code == 401
    wrong = await http.post(f"/api/tools/{FREE}", json={"ImageURL": "nope"}, headers={"X-Payment-Token": token})
    assert wrong.status_code == 400
    oversized = await http.get("/api/catalog", headers={"Authorization": f"Bearer {key}{'x' * 9000}"})
    assert oversized.status_code == 400
