"""A payment is never lost or taken twice: the sandbox facilitator loses, delays and fails its answers on demand
while the official x402 client pays, and every case ends with the wallet debited at most once, the caller holding
its result or its token (or told nothing was taken), and the ledger equal to the facilitator's transfers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.exceptions
from settlement_support import PRICE_ATOMIC, base_url, books_balance, face, ledger, until_status
from support import Pipeline
from x402_support import header_of, httpx_buyer, new_wallet, sign_for

from api import appkeys as api_keys
from api.apikeys import ApiKeyStore
from sandbox.facilitator.config import DEMO_WALLET_ADDRESS
from sandbox.facilitator.testing import RunningFacilitator

SETTLE_TIMEOUT_S = 1.0
LOST_ANSWERS: dict[str, dict[str, Any]] = {
    "answer_after_the_timeout": {"mode": "settle_then_delay", "delayS": 2.5, "times": 1},
    "connection_dropped_after_settling": {"mode": "settle_then_drop", "times": 1},
    "5xx_after_settling": {"mode": "settle_then_5xx", "status5xx": 502, "times": 1},
    "5xx_without_settling": {"mode": "5xx", "status5xx": 503, "times": 1},
    "connection_reset": {"mode": "refuse", "times": 1},
}


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 20, "qps": 1000}}


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url, "SERVER402_X402_FACILITATOR_TIMEOUT_S": "1"}


@pytest.mark.parametrize("fault", list(LOST_ANSWERS))
async def test_an_inline_call_whose_settle_answer_is_lost_is_settling_then_runs_once(
    pipeline: Pipeline, facilitator: RunningFacilitator, fault: str
) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    await facilitator.put_faults(settle=LOST_ANSWERS[fault])
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post(
            "/api/tools/face-detection", json=face(pipeline), headers={"Prefer": "respond-async"}
        )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "settling" and "PAYMENT-RESPONSE" not in response.headers
    done = await until_status(pipeline, f"/api/jobs/{job['jobId']}", {"succeeded", "failed"})
    assert done["status"] == "succeeded", done
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - PRICE_ATOMIC  # debited once
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1
    events = [entry["event"] for entry in await ledger(pipeline)]
    assert events == ["settling", "created", "settled", "consumed"]
    await books_balance(pipeline, facilitator, paid=1)


async def test_a_blocking_call_waits_through_its_settlement_and_answers_the_result(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    await facilitator.put_faults(settle=LOST_ANSWERS["connection_dropped_after_settling"])
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post("/api/tools/face-detection", json=face(pipeline), headers={"Prefer": "wait=20"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["Action"] == "DetectFace"
    await books_balance(pipeline, facilitator, paid=1)


@pytest.mark.parametrize("fault", list(LOST_ANSWERS))
async def test_a_purchase_whose_settle_answer_is_lost_is_202_settling_then_paid_with_its_token(
    pipeline: Pipeline, facilitator: RunningFacilitator, fault: str
) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    await facilitator.put_faults(settle=LOST_ANSWERS[fault])
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post("/api/payments", json={"serviceId": "face-detection", "calls": 2})
    assert response.status_code == 202, response.text
    payment = response.json()
    assert payment["status"] == "settling" and payment["token"]
    token = payment["token"]
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    if status == 402:  # asked before the reconciler ended it: the token pays once the payment is paid
        assert body["code"] == "payment_settling", body
    paid = await until_status(pipeline, f"/api/payments/{payment['paymentId']}", {"paid", "failed"},
                              **{"X-Payment-Token": token})  # fmt: skip
    assert paid["status"] == "paid" and paid["transaction"], paid
    for _ in range(2 if status == 402 else 1):
        status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
        assert status == 200, body
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - 2 * PRICE_ATOMIC
    await books_balance(pipeline, facilitator, paid=2)


async def test_the_same_signed_payment_sent_again_while_it_settles_joins_it_and_settles_once(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    required = await pipeline.api.post("/api/tools/face-detection", json=face(pipeline))
    header = header_of(await sign_for(required.headers["PAYMENT-REQUIRED"]))
    await facilitator.put_faults(settle={"mode": "5xx", "status5xx": 503, "times": 1})
    sent = {"PAYMENT-SIGNATURE": header, "Idempotency-Key": "join-1", "Prefer": "respond-async"}
    first = await pipeline.call("face-detection", face(pipeline), **sent)
    again = await pipeline.call("face-detection", face(pipeline), **sent)
    assert (first[0], again[0]) == (202, 202) and first[1]["jobId"] == again[1]["jobId"]
    await until_status(pipeline, f"/api/jobs/{first[1]['jobId']}", {"succeeded"})
    counts = await facilitator.all_counts()
    assert counts["outcomes"]["settle"] == {"5xx": 1, "settled": 1}  # the first answer lost, one real settle
    await books_balance(pipeline, facilitator, paid=1)


async def test_a_repeat_shown_a_settling_job_sees_it_fail_when_the_payment_is_refused(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """While the first request settles, its repeat (same payment and Idempotency-Key) is shown the job; the
    facilitator then refuses (no funds): the job the repeat was shown says so, it does not vanish."""
    key, _ = new_wallet()
    required = (await pipeline.api.post("/api/tools/face-detection", json=face(pipeline))).headers["PAYMENT-REQUIRED"]
    sent = {"PAYMENT-SIGNATURE": header_of(await sign_for(required, key)), "Idempotency-Key": "refused-1"}
    await facilitator.put_faults(settle={"latencyMs": {"fixed": 600}, "times": 1})
    first = asyncio.create_task(pipeline.call("face-detection", face(pipeline), **sent))
    for _ in range(100):
        if await pipeline.redis.keys("s402:x402:intent:*"):
            break
        await asyncio.sleep(0.01)
    status, shown, _ = await pipeline.call("face-detection", face(pipeline), **{**sent, "Prefer": "respond-async"})
    assert (status, shown["status"]) == (202, "settling")
    status, body, _ = await first
    assert (status, body["code"]) == (402, "invalid_exact_evm_insufficient_balance")
    status, job = await pipeline.job(shown["jobId"])
    assert (status, job["status"], job["error"]["code"]) == (200, "failed", "payment_refused")
    assert "nothing was charged" in job["error"]["message"]


async def test_a_paid_call_whose_release_was_lost_is_queued_by_the_reconciler(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """The process proves the payment paid and dies before it queues the job (the release fails once here): the
    intent stays due, and the reconciler queues the job; the call runs once, paid once."""
    core = pipeline.api.app[api_keys.CORE]
    release = core.release
    lost = []

    async def dies_once(*args: Any, **kwargs: Any) -> Any:
        if not lost:
            lost.append(True)
            raise redis.exceptions.ConnectionError("Redis went away here, as if the process died")
        return await release(*args, **kwargs)

    core.release = dies_once  # type: ignore[method-assign]
    required = (await pipeline.api.post("/api/tools/face-detection", json=face(pipeline))).headers["PAYMENT-REQUIRED"]
    header = header_of(await sign_for(required))
    response = await pipeline.api.post(
        "/api/tools/face-detection", json=face(pipeline), headers={"PAYMENT-SIGNATURE": header, "Idempotency-Key": "l"}
    )
    assert response.status == 503  # the request could not finish: its caller hears 503, the money is recorded
    status, again, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header, "Idempotency-Key": "l", "Prefer": "wait=30"}
    )
    assert status == 200, again
    await books_balance(pipeline, facilitator, paid=1)
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_a_calls_webhook_hears_each_step_of_a_lost_settlement(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    _, key = await ApiKeyStore(pipeline.redis).create("hooks", None, 1000, 1000)
    required = (await pipeline.api.post("/api/tools/face-detection", json=face(pipeline))).headers["PAYMENT-REQUIRED"]
    await facilitator.put_faults(settle={"mode": "settle_then_drop", "times": 1})
    hook = "?webhook=https://93.184.216.34/hook&webhookEvents=job.settling,job.started,job.completed"
    status, job, _ = await pipeline.call(
        f"face-detection{hook}", face(pipeline),
        **{"PAYMENT-SIGNATURE": header_of(await sign_for(required)), "X-API-Key": key, "Prefer": "respond-async"},
    )  # fmt: skip
    assert (status, job["status"]) == (202, "settling")
    await until_status(pipeline, f"/api/jobs/{job['jobId']}", {"succeeded"}, **{"X-API-Key": key})
    listed = await (await pipeline.api.get(f"/api/jobs/{job['jobId']}/deliveries", headers={"X-API-Key": key})).json()
    assert [d["event"] for d in listed["deliveries"]] == ["job.settling", "job.started", "job.succeeded"]
