"""The API SIGKILLed after the facilitator moved the money and before the API wrote it down: after a restart the
payment is found (its intent was recorded before /settle), proven by asking the facilitator again, and honoured.
Real processes (tests/processes.py), the official x402 client signing, the sandbox facilitator's ledger."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from processes import Deployment
from support import PIPELINE_KEY_ID, PIPELINE_SECRET
from x402_support import header_of, sign_for

from sandbox.config import KeyPair, SandboxConfig
from sandbox.facilitator.config import DEMO_PAY_TO, DEMO_WALLET_ADDRESS
from sandbox.facilitator.testing import RunningFacilitator
from sandbox.testing import RunningSandbox, run_sandbox
from scripts.embedded_redis import EmbeddedRedis
from shared import keys

PAID = "face-detection"
PRICE_ATOMIC = 200_000
SETTLE_TIMEOUT_S = "6"  # the intent of a request that died is looked at 5 s after this
SLOW_SETTLE = {"mode": "settle_then_delay", "delayS": 5, "times": 1}  # settled at once, answered late


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    async with run_sandbox(SandboxConfig(key_pairs=(KeyPair(PIPELINE_KEY_ID, PIPELINE_SECRET),), qps=1000)) as up:
        yield up


@pytest.fixture
async def deployment(
    tmp_path: Path, sandbox: RunningSandbox, facilitator: RunningFacilitator
) -> AsyncIterator[Deployment]:
    operator = tmp_path / "operator.toml"
    operator.write_text("[defaults]\namountCents = 20\nqps = 1000\n")
    redis_server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": PIPELINE_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": PIPELINE_SECRET,
        "SERVER402_FACEBODY_ENDPOINT": sandbox.endpoint,
        "SERVER402_CLOUDAUTH_ENDPOINT": sandbox.endpoint,
        "SERVER402_OPERATOR_FILE": str(operator),
        "SERVER402_X402_FACILITATOR_URL": facilitator.url,
        "SERVER402_X402_FACILITATOR_TIMEOUT_S": SETTLE_TIMEOUT_S,
        "SERVER402_LOG_LEVEL": "warning",
        "SERVER402_LOG_FORMAT": "json",
    }
    running = Deployment(tmp_path, redis_server, env)
    try:
        yield running
    finally:
        await running.close()
        redis_server.stop()
        print(running.logs())


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 40.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        assert loop.time() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.1)


async def ledger(deployment: Deployment) -> list[dict[str, str]]:
    entries = await deployment.redis.xrange(keys.LEDGER)
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


async def killed_mid_settle(
    deployment: Deployment, facilitator: RunningFacilitator, http: aiohttp.ClientSession, path: str, **request: Any
) -> None:
    """Send the request, SIGKILL the API once the facilitator has moved the money (its answer still to come)."""
    api = deployment.children[-1]
    sent = asyncio.create_task(http.post(f"{deployment.api_url}{path}", **request))
    await until(lambda: _transfers_at_least(facilitator, 1), "the facilitator settled")
    assert await api.kill() == -signal.SIGKILL
    with pytest.raises(aiohttp.ClientError):
        await sent  # the caller heard nothing


async def _transfers_at_least(facilitator: RunningFacilitator, count: int) -> bool:
    return len(await facilitator.transfers()) >= count


async def required_header(http: aiohttp.ClientSession, deployment: Deployment, path: str, body: Any) -> str:
    async with http.post(f"{deployment.api_url}{path}", json=body) as response:
        assert response.status == 402
        return response.headers["PAYMENT-REQUIRED"]


async def test_an_inline_call_whose_api_dies_after_settling_runs_once_after_the_restart(
    deployment: Deployment, facilitator: RunningFacilitator, sandbox: RunningSandbox
) -> None:
    await deployment.start_worker()
    await deployment.start_api()
    body = {"ImageURL": sandbox.image("face.jpg")}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        header = header_of(await sign_for(await required_header(http, deployment, f"/api/tools/{PAID}", body)))
        before = await facilitator.balance(DEMO_WALLET_ADDRESS)
        await facilitator.put_faults(settle=SLOW_SETTLE)
        signed = {"PAYMENT-SIGNATURE": header, "Idempotency-Key": "crash-1", "Prefer": "respond-async"}
        await killed_mid_settle(deployment, facilitator, http, f"/api/tools/{PAID}", json=body, headers=signed)
        await deployment.start_api()
        async with http.post(f"{deployment.api_url}/api/tools/{PAID}", json=body, headers=signed) as again:
            assert again.status == 202, await again.text()  # the same payment and key: the same job, found
            job = await again.json()
        async with http.get(f"{deployment.api_url}/api/jobs/{job['jobId']}?wait=30") as done:
            finished = await done.json()
    assert finished["status"] == "succeeded", finished
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - PRICE_ATOMIC
    assert (await sandbox.stats())["actions"]["DetectFace"]["calls"] == 1
    entries = await ledger(deployment)
    assert [e["event"] for e in entries] == ["created", "settled", "consumed"]
    received = sum(int(t["value"]) for t in await facilitator.transfers() if t["to"].lower() == DEMO_PAY_TO.lower())
    assert sum(int(e["amountAtomic"]) for e in entries if e["event"] == "settled") == received == PRICE_ATOMIC


async def test_a_purchase_whose_api_dies_after_settling_is_paid_after_the_restart(
    deployment: Deployment, facilitator: RunningFacilitator, sandbox: RunningSandbox
) -> None:
    await deployment.start_worker()
    await deployment.start_api()
    body = {"serviceId": PAID, "calls": 2}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        header = header_of(await sign_for(await required_header(http, deployment, "/api/payments", body)))
        await facilitator.put_faults(settle=SLOW_SETTLE)
        signed = {"PAYMENT-SIGNATURE": header, "Idempotency-Key": "crash-purchase-1"}
        await killed_mid_settle(deployment, facilitator, http, "/api/payments", json=body, headers=signed)
        await deployment.start_api()

        async def paid() -> bool:
            async with http.post(f"{deployment.api_url}/api/payments", json=body, headers=signed) as again:
                payment = await again.json()
                return again.status == 200 and payment["status"] == "paid"

        await until(paid, "the reconciler proved the payment and the repeat shows it paid, with its token")
        async with http.post(f"{deployment.api_url}/api/payments", json=body, headers=signed) as again:
            token = (await again.json())["token"]
        for _ in range(2):
            async with http.post(
                f"{deployment.api_url}/api/tools/{PAID}",
                json={"ImageURL": sandbox.image("face.jpg")},
                headers={"X-Payment-Token": token},
            ) as call:
                assert call.status == 200, await call.text()
    settled = [e for e in await ledger(deployment) if e["event"] == "settled"]
    assert len(settled) == 1 and int(settled[0]["amountAtomic"]) == 2 * PRICE_ATOMIC
    assert len(await facilitator.transfers()) == 1
