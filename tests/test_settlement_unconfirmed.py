"""A payment whose settle answer was lost and that no later answer proves: it ends `unconfirmed` once its
authorization has lapsed (SERVER402_X402_RECONCILE_GRACE_S past validBefore). Its call never runs, the payer is
told it could not be confirmed (never "nothing was charged"), and the ledger says so for the operator. A refusal
on the second look that the first, lost settlement may have caused ("nonce already used", no balance) proves
nothing either way."""

from __future__ import annotations

from typing import Any

import pytest
from settlement_support import PRICE_ATOMIC, books_balance, face, ledger, until_status
from support import Pipeline
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402_support import base_usdc_requirement, header_of, new_wallet, resign, sign_for

from sandbox.facilitator.config import DEMO_WALLET_ADDRESS
from sandbox.facilitator.testing import RunningFacilitator


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 20, "qps": 1000}}


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {
        "SERVER402_X402_FACILITATOR_URL": facilitator.url,
        "SERVER402_X402_FACILITATOR_TIMEOUT_S": "1",
        "SERVER402_X402_TIMEOUT_S": "10",  # payments valid for 10 s: they lapse within the test
        "SERVER402_X402_RECONCILE_GRACE_S": "0",
    }


async def test_a_lost_answer_then_no_funds_on_the_second_look_ends_unconfirmed_not_nothing_charged(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """The first answer is lost (a 5xx: here nothing moved, but the gateway cannot know); the wallet then spends its
    only funds on another call, so every later settle is refused for want of balance, which a settlement that did
    happen would also cause: the call ends unconfirmed, and the payer is not told it cost nothing."""
    key, address = new_wallet()
    await facilitator.fund(address, PRICE_ATOMIC)
    required = (await pipeline.api.post("/api/tools/face-detection", json=face(pipeline))).headers["PAYMENT-REQUIRED"]
    lost, spent = header_of(await sign_for(required, key)), header_of(await sign_for(required, key))
    await facilitator.put_faults(settle={"mode": "5xx", "status5xx": 503, "times": 1})
    status, job, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": lost, "Prefer": "respond-async"}
    )
    assert (status, job["status"]) == (202, "settling")
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": spent})
    assert status == 200
    failed = await until_status(pipeline, f"/api/jobs/{job['jobId']}", {"succeeded", "failed"})
    assert failed["status"] == "failed" and failed["error"]["code"] == "payment_unconfirmed", failed
    assert "nothing was charged" not in failed["error"]["message"] and "not known" in failed["error"]["message"]
    assert await facilitator.balance(address) == 0  # one call paid, one call run
    events = [(e["event"], e["payer"]) for e in await ledger(pipeline) if e["payer"] == address]
    assert [event for event, _ in events] == ["settling", "created", "settled", "consumed", "settle_unconfirmed"]
    await books_balance(pipeline, facilitator, paid=1)


async def test_nonce_already_used_by_another_transfer_proves_nothing_and_the_payer_gets_nothing(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """The answer for our payload is lost; the payer spends the same nonce in another payload (to someone else):
    the reconciler hears "nonce already used", which does not show our payTo was paid, so nothing is given."""
    key, address = new_wallet()
    await facilitator.fund(address, 10 * PRICE_ATOMIC)
    required = (await pipeline.api.post("/api/tools/face-detection", json=face(pipeline))).headers["PAYMENT-REQUIRED"]
    ours = await sign_for(required, key)
    await facilitator.put_faults(settle={"mode": "5xx", "status5xx": 503, "times": 1})
    status, job, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(ours), "Prefer": "respond-async"}
    )
    assert (status, job["status"]) == (202, "settling")
    elsewhere = base_usdc_requirement(pay_to=DEMO_WALLET_ADDRESS)
    other = resign(ours.model_copy(update={"accepted": elsewhere}), key, to=DEMO_WALLET_ADDRESS)
    direct = HTTPFacilitatorClient(FacilitatorConfig(url=facilitator.url))
    try:
        settled = await direct.settle(other, elsewhere)
    finally:
        await direct.aclose()
    assert settled.success  # the nonce went to another transfer
    failed = await until_status(pipeline, f"/api/jobs/{job['jobId']}", {"succeeded", "failed"})
    assert failed["status"] == "failed" and failed["error"]["code"] == "payment_unconfirmed", failed
    assert "nothing was charged" not in failed["error"]["message"]
    events = [e["event"] for e in await ledger(pipeline)]
    assert events == ["settling", "settle_unconfirmed"]  # for the operator to check on chain
    assert (await pipeline.sandbox.stats())["actions"].get("DetectFace", {}).get("calls", 0) == 0
    await books_balance(pipeline, facilitator, paid=0)
