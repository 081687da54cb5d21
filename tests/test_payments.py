"""Payments end to end: the official x402 client pays our 402s through the sandbox facilitator (real EIP-712
signatures, a ledger of test balances), tokens are spent by real workers calling the sandbox upstream."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import msgspec
import pytest
from settlement_support import PRICE_ATOMIC, base_url, face, ledger
from support import Pipeline
from x402 import PaymentRequired
from x402.http.utils import decode_payment_required_header, decode_payment_response_header
from x402_support import authorization_of, header_of, httpx_buyer, new_wallet, resign, sign_for

from api.apikeys import ApiKeyStore
from sandbox.facilitator.config import DEMO_PAY_TO, DEMO_WALLET_ADDRESS
from sandbox.facilitator.testing import RunningFacilitator
from shared import keys
from shared.payments import PaymentStore

SEED_PAYMENT_FIELDS = [
    "paymentId", "serviceId", "internalServiceId", "amountCents", "currency", "billingMode", "maxCalls",
    "remainingCalls", "usedCalls", "status", "token", "payTo", "provider", "providerId", "clientId", "expiresAt",
    "paidAt",
]  # fmt: skip


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {
        "defaults": {"amountCents": 20, "qps": 1000},
        "services": {
            "facial-expression-recognition": {"amountCents": 0},
            "body-pose-estimation": {"requiresApiKey": True},
        },
    }


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    # a short deadline: a call that keeps failing upstream gives up (and is given back) quickly
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url, "SERVER402_JOB_DEADLINE_S": "2"}


async def required_header(pipeline: Pipeline, tool: str = "face-detection") -> str:
    status, _, headers = await pipeline.call(tool, face(pipeline))
    assert status == 402
    return str(headers["PAYMENT-REQUIRED"])


async def buy(pipeline: Pipeline, service: str = "face-detection", calls: int = 1) -> dict[str, Any]:
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post("/api/payments", json={"serviceId": service, "calls": calls})
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


# ---------------------------------------------------------------- the 402


async def test_an_unpaid_call_gets_the_seed_402_and_x402_terms_the_official_client_understands(
    pipeline: Pipeline,
) -> None:
    status, body, headers = await pipeline.call("face-detection", face(pipeline))
    assert status == 402
    assert headers["X-Payment-Required"] == "true"
    assert body["error"] == "payment required"
    payment = body["payment"]
    assert list(payment)[: len(SEED_PAYMENT_FIELDS)] == SEED_PAYMENT_FIELDS
    assert payment["status"] == "pending" and payment["amountCents"] == 20 and payment["token"] == ""
    assert payment["serviceId"] == "face-detection" and payment["payTo"] == DEMO_PAY_TO
    required = decode_payment_required_header(headers["PAYMENT-REQUIRED"])
    assert isinstance(required, PaymentRequired) and required.x402_version == 2
    [accepted] = required.accepts
    assert (accepted.scheme, accepted.network, accepted.amount) == ("exact", "eip155:8453", str(PRICE_ATOMIC))
    assert accepted.pay_to == DEMO_PAY_TO and accepted.extra["serviceId"] == "face-detection"
    assert (await pipeline.api.get(f"/api/payments/{payment['paymentId']}")).status == 200  # verifiable offer


async def test_a_free_tool_runs_without_payment(pipeline: Pipeline) -> None:
    status, body, _ = await pipeline.call("facial-expression-recognition", face(pipeline))
    assert status == 200, body


# ---------------------------------------------------------------- paying inline with the tool call


async def test_the_official_client_pays_a_tool_call_inline(pipeline: Pipeline, facilitator: RunningFacilitator) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post("/api/tools/face-detection", json=face(pipeline))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["Action"] == "DetectFace"
    settled = decode_payment_response_header(response.headers["PAYMENT-RESPONSE"])
    assert settled.success and settled.payer == DEMO_WALLET_ADDRESS and settled.transaction
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - PRICE_ATOMIC
    assert await facilitator.balance(DEMO_PAY_TO) == PRICE_ATOMIC
    events = [entry["event"] for entry in await ledger(pipeline)]
    assert events == ["created", "settled", "consumed"]


async def test_one_signed_payment_sent_many_times_at_once_runs_the_tool_once(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    header = header_of(await sign_for(await required_header(pipeline)))
    calls = [pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header}) for _ in range(8)]
    answers = await asyncio.gather(*calls)
    statuses = sorted(status for status, _, _ in answers)
    # the copies sent while the first settles hear so (409, Retry-After); any later one that it was spent (402)
    assert statuses[0] == 200 and all(status in (402, 409) for status in statuses[1:])
    codes = {body["code"] for status, body, _ in answers if status != 200}
    assert codes <= {"settlement_in_progress", "payment_replayed"}
    assert len(await facilitator.transfers()) == 1
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1
    _, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-PAYMENT": header})  # the v1 name
    assert (body["code"], body["error"]) == ("payment_replayed", "payment required")


async def test_a_payment_made_for_one_service_is_refused_by_another(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    header = header_of(await sign_for(await required_header(pipeline, "face-detection")))
    status, body, _ = await pipeline.call("face-attribute-recognition", face(pipeline), **{"PAYMENT-SIGNATURE": header})
    assert (status, body["code"]) == (402, "payment_mismatch")
    assert await facilitator.transfers() == []
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header})
    assert status == 200  # not spent by the refusal


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("wrong_recipient", "payment_mismatch"),
        ("underpaid", "payment_mismatch"),
        ("bad_signature", "payment_signature_invalid"),
        ("expired", "payment_expired"),
        ("garbage", "payment_malformed"),
        ("malformed_value", "payment_malformed"),
        ("not_json", "payment_malformed"),
        ("v1", "unsupported_x402_version"),
    ],
)
async def test_bad_payments_are_refused_and_charge_nothing(
    pipeline: Pipeline, facilitator: RunningFacilitator, tamper: str, code: str
) -> None:
    payment = await sign_for(await required_header(pipeline))
    auth = authorization_of(payment)
    if tamper == "wrong_recipient":
        elsewhere = payment.accepted.model_copy(update={"pay_to": DEMO_WALLET_ADDRESS})
        header = header_of(resign(payment.model_copy(update={"accepted": elsewhere}), to=DEMO_WALLET_ADDRESS))
    elif tamper == "underpaid":
        cheap = payment.accepted.model_copy(update={"amount": "1000"})
        header = header_of(resign(payment.model_copy(update={"accepted": cheap}), value="1000"))
    elif tamper == "bad_signature":
        forged = dict(payment.payload)
        forged["signature"] = "0x" + "11" * 65
        header = header_of(payment.model_copy(update={"payload": forged}))
    elif tamper == "expired":
        header = header_of(resign(payment, valid_before=str(int(time.time()) - 5)))
    elif tamper == "malformed_value":
        broken = dict(payment.payload)
        broken["authorization"] = {**broken["authorization"], "value": "0x30d40"}
        header = header_of(payment.model_copy(update={"payload": broken}))
    elif tamper == "garbage":
        header = "definitely not base64 !!"
    elif tamper == "not_json":
        header = base64.b64encode(b"[1, 2").decode()
    else:
        v1 = {"x402Version": 1, "scheme": "exact", "network": "base", "payload": payment.payload}
        header = base64.b64encode(json.dumps(v1).encode()).decode()
    status, body, headers = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header})
    assert (status, body["code"]) == (402, code), body
    assert body["error"] == "payment required" and "PAYMENT-REQUIRED" in headers
    assert await facilitator.transfers() == []
    assert (await pipeline.sandbox.stats())["actions"].get("DetectFace", {}).get("calls", 0) == 0
    assert auth.nonce  # the original stays payable:
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(payment)})
    assert status == 200


async def test_an_unfunded_payer_is_refused_and_may_pay_once_funded(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    key, address = new_wallet()
    header = header_of(await sign_for(await required_header(pipeline), key))
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header})
    assert (status, body["code"]) == (402, "invalid_exact_evm_insufficient_balance")
    await facilitator.fund(address, PRICE_ATOMIC)
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header})
    assert status == 200
    assert await facilitator.balance(address) == 0


# ---------------------------------------------------------------- buying tokens


async def test_the_official_client_buys_a_bundle_and_exactly_that_many_calls_run(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    payment = await buy(pipeline, "face-detection", calls=3)
    assert (payment["status"], payment["maxCalls"], payment["remainingCalls"]) == ("paid", 3, 3)
    assert payment["amountCents"] == 60 and payment["clientId"] == DEMO_WALLET_ADDRESS
    assert await facilitator.balance(DEMO_PAY_TO) == 3 * PRICE_ATOMIC
    token = payment["token"]
    for _ in range(3):
        status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
        assert status == 200, body
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    assert (status, body["error"]) == (402, "payment token has no remaining calls")
    view = await (await pipeline.api.get(f"/api/payments/{payment['paymentId']}")).json()
    assert view == {"paymentId": payment["paymentId"], "serviceId": "face-detection", "status": "paid"}  # others
    owner_view = await (
        await pipeline.api.get(f"/api/payments/{payment['paymentId']}", headers={"X-Payment-Token": token})
    ).json()
    assert (owner_view["remainingCalls"], owner_view["usedCalls"], owner_view["token"]) == (0, 3, token)
    assert owner_view["payer"] == DEMO_WALLET_ADDRESS and owner_view["boundTo"] == DEMO_WALLET_ADDRESS


async def test_fifty_concurrent_calls_on_a_one_call_token_run_exactly_once(pipeline: Pipeline) -> None:
    token = (await buy(pipeline))["token"]
    calls = [
        pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token, "Prefer": "respond-async"})
        for _ in range(50)
    ]
    results = await asyncio.gather(*calls)
    accepted = [body for status, body, _ in results if status == 202]
    refused = [body for status, body, _ in results if status == 402]
    assert len(accepted) == 1 and len(refused) == 49
    assert {body["error"] for body in refused} == {"payment token has no remaining calls"}
    status, _ = await pipeline.job(accepted[0]["jobId"])  # the job is the token's: present it to read
    assert status == 404
    response = await pipeline.api.get(f"/api/jobs/{accepted[0]['jobId']}?wait=10", headers={"X-Payment-Token": token})
    assert (await response.json())["status"] == "succeeded"
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_sending_the_same_signed_purchase_again_returns_the_same_payment_and_its_token_only_with_proof(
    pipeline: Pipeline,
) -> None:
    first = await pipeline.api.post("/api/payments", json={"serviceId": "face-detection", "calls": 2})
    assert first.status == 402
    header = header_of(await sign_for(first.headers["PAYMENT-REQUIRED"]))
    body = {"serviceId": "face-detection", "calls": 2}
    proof = {"PAYMENT-SIGNATURE": header, "Idempotency-Key": "purchase-7f3a"}
    paid = await pipeline.api.post("/api/payments", json=body, headers=proof)
    again = await pipeline.api.post("/api/payments", json=body, headers=proof)
    assert (paid.status, again.status) == (201, 200)
    assert (await paid.json())["token"] == (await again.json())["token"]
    # the signed authorization alone is public once settled (on chain): it gets the payment's status, no token
    bare = await pipeline.api.post("/api/payments", json=body, headers={"PAYMENT-SIGNATURE": header})
    guessed = await pipeline.api.post("/api/payments", json=body, headers={**proof, "Idempotency-Key": "guess"})
    for answer in (bare, guessed):
        assert answer.status == 200
        assert await answer.json() == {"paymentId": (await paid.json())["paymentId"], "serviceId": "face-detection",
                                       "status": "paid"}  # fmt: skip
    settled = [entry for entry in await ledger(pipeline) if entry["event"] == "settled"]
    assert len(settled) == 1


async def test_a_token_works_only_for_its_service_and_a_bogus_token_is_refused(pipeline: Pipeline) -> None:
    token = (await buy(pipeline, "face-detection"))["token"]
    status, body, _ = await pipeline.call("face-attribute-recognition", face(pipeline), **{"X-Payment-Token": token})
    assert (status, body["code"]) == (402, "token_wrong_service")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    # a genuine token padded with Unicode spaces is not that token (only HTTP's own space and tab are padding)
    for bogus in (forged, "s402pt_nope", "x" * 5000, "🙂", token + "\u00a0", "\u3000" + token, token + "\u0085"):
        status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": bogus})
        assert (status, body["code"]) == (402, "invalid_token")
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    assert status == 200  # the refusals spent nothing


async def test_expired_tokens_are_refused_and_swept_into_the_ledger(pipeline: Pipeline) -> None:
    payment = await buy(pipeline, "face-detection", calls=2)
    await pipeline.redis.hset(keys.payment_key(payment["paymentId"]), "expiresAt", "1")
    await pipeline.redis.zadd(keys.PAYMENT_EXPIRY, {payment["paymentId"]: 1})
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": payment["token"]})
    assert (status, body["error"]) == (402, "payment token expired")
    assert await PaymentStore(pipeline.redis, pipeline.settings.payments, pipeline.settings.x402).expire_due() == 1
    expired = [entry for entry in await ledger(pipeline) if entry["event"] == "expired"]
    assert [(e["paymentId"], e["calls"], e["amountAtomic"]) for e in expired] == [
        (payment["paymentId"], "2", str(2 * PRICE_ATOMIC))
    ]
    view = await (await pipeline.api.get(f"/api/payments/{payment['paymentId']}")).json()
    assert view["status"] == "expired"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"serviceId": "no-such-service"}, 400),
        ({}, 400),
        ({"serviceId": 5}, 400),
        ({"serviceId": "face-detection", "calls": 0}, 400),
        ({"serviceId": "face-detection", "calls": "3"}, 400),
        ({"serviceId": "face-detection", "calls": True}, 400),
        ({"serviceId": "face-detection", "providerId": "paypal"}, 400),
        ({"serviceId": "face-detection", "surprise": 1}, 400),
        ({"serviceId": "facial-expression-recognition"}, 400),
        ({"serviceId": "aliyun-facebody-detect-face"}, 402),  # the legacy id
    ],
)
async def test_payment_creation_validates_its_body(pipeline: Pipeline, body: dict[str, Any], status: int) -> None:
    response = await pipeline.api.post("/api/payments", json=body)
    assert response.status == status, await response.text()


async def test_payment_lookups_and_malformed_bodies(pipeline: Pipeline) -> None:
    assert (await pipeline.api.get("/api/payments/pay_unknown")).status == 404
    assert (await pipeline.api.get("/api/payments/" + "x" * 300)).status == 404
    response = await pipeline.api.post("/api/payments", data=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert await ledger(pipeline) == []


# ---------------------------------------------------------------- fairness on failure


async def test_an_inline_payment_whose_call_fails_upstream_comes_back_as_a_credit(pipeline: Pipeline) -> None:
    await pipeline.sandbox.put_fault(action="DetectFace", error5xxRate=1.0)
    async with httpx_buyer(base_url(pipeline)) as client:
        response = await client.post("/api/tools/face-detection", json=face(pipeline))
    assert response.status_code == 502, response.text
    charge = response.json()["job"]["charge"]
    assert charge["refunded"] is True and charge["refundReason"] == "upstream_failed"
    await pipeline.sandbox.clear_faults()
    status, body, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"X-Payment-Token": charge["creditToken"]}
    )
    assert status == 200, body
    events = [entry["event"] for entry in await ledger(pipeline)]
    assert events == ["created", "settled", "consumed", "credited", "consumed"]


async def test_a_token_call_that_fails_upstream_is_restored_but_a_refused_input_is_charged(
    pipeline: Pipeline,
) -> None:
    payment = await buy(pipeline, "face-detection", calls=2)
    token = payment["token"]
    await pipeline.sandbox.put_fault(action="DetectFace", error5xxRate=1.0, status5xx=503)
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    assert status == 502 and body["job"]["charge"]["refunded"] is True
    await pipeline.sandbox.clear_faults()
    bad_image = {"ImageURL": pipeline.sandbox.image("no-such-image.jpg")}
    status, body, _ = await pipeline.call("face-detection", bad_image, **{"X-Payment-Token": token})
    assert status == 422, body
    assert body["job"]["charge"]["refunded"] is False and "charged" in body["job"]["charge"]["note"]
    view = await (
        await pipeline.api.get(f"/api/payments/{payment['paymentId']}", headers={"X-Payment-Token": token})
    ).json()
    assert (view["remainingCalls"], view["usedCalls"]) == (1, 1)


async def test_canceling_a_queued_paid_call_gives_it_back(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()
    token = (await buy(pipeline))["token"]
    status, job, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"X-Payment-Token": token, "Prefer": "respond-async"}
    )
    assert status == 202
    canceled = await pipeline.api.delete(f"/api/jobs/{job['jobId']}", headers={"X-Payment-Token": token})
    assert canceled.status == 200
    assert (await canceled.json())["charge"]["refundReason"] == "canceled"
    pipeline.start_worker()
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    assert status == 200, body


# ---------------------------------------------------------------- the books


async def test_the_ledger_reconciles_with_the_facilitator_and_the_payments(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    bundle = await buy(pipeline, "face-detection", calls=3)
    for _ in range(2):
        await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": bundle["token"]})
    async with httpx_buyer(base_url(pipeline)) as client:
        await client.post("/api/tools/face-attribute-recognition", json=face(pipeline))
    entries = await ledger(pipeline)
    settled = sum(int(e["amountAtomic"]) for e in entries if e["event"] == "settled")
    received = sum(int(t["value"]) for t in await facilitator.transfers() if t["to"].lower() == DEMO_PAY_TO.lower())
    assert settled == received == await facilitator.balance(DEMO_PAY_TO) == 4 * PRICE_ATOMIC
    for payment_id in {e["paymentId"] for e in entries}:
        mine = [e for e in entries if e["paymentId"] == payment_id]
        used = sum(int(e["calls"]) for e in mine if e["event"] == "consumed") - sum(
            int(e["calls"]) for e in mine if e["event"] == "credited"
        )
        view = await PaymentStore(pipeline.redis, pipeline.settings.payments, pipeline.settings.x402).get(payment_id)
        assert view is not None and used == view.used_calls and view.used_calls + view.remaining_calls == view.max_calls
    assert msgspec.json.decode(msgspec.json.encode(entries))  # plain strings, exportable as they are


async def test_an_idempotent_retry_of_an_inline_payment_is_not_paid_again_nor_shared_with_other_payers(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    required = await required_header(pipeline)
    mine = {"PAYMENT-SIGNATURE": header_of(await sign_for(required)), "Idempotency-Key": "order-1"}
    _, first, _ = await pipeline.call("face-detection", face(pipeline), **mine, Prefer="respond-async")
    _, again, _ = await pipeline.call("face-detection", face(pipeline), **mine, Prefer="respond-async")
    assert first["jobId"] == again["jobId"]
    key, address = new_wallet()
    await facilitator.fund(address, PRICE_ATOMIC)
    theirs = {"PAYMENT-SIGNATURE": header_of(await sign_for(required, key)), "Idempotency-Key": "order-1"}
    status, other, _ = await pipeline.call("face-detection", face(pipeline), **theirs, Prefer="respond-async")
    assert status == 202 and other["jobId"] != first["jobId"]
    assert len(await facilitator.transfers()) == 2
    unpaid = await pipeline.call("face-detection", face(pipeline), **{"Idempotency-Key": "order-1"})
    assert unpaid[0] == 402  # the key alone never reaches a paid job


async def test_a_paid_call_whose_deadline_passes_before_it_runs_is_given_back(pipeline: Pipeline) -> None:
    await pipeline.stop_worker()
    payment = await buy(pipeline)
    token = payment["token"]
    status, job, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"X-Payment-Token": token, "Prefer": "respond-async"}
    )
    assert status == 202
    await pipeline.redis.hset(keys.job_key(job["jobId"]), "deadline", "1")  # as if the queue had been stuck
    pipeline.start_worker()
    response = await pipeline.api.get(f"/api/jobs/{job['jobId']}?wait=10", headers={"X-Payment-Token": token})
    view = await response.json()
    assert view["status"] == "expired" and view["charge"]["refundReason"] == "expired"
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    assert status == 200, body


async def test_a_token_bought_with_an_api_key_works_only_with_that_key(pipeline: Pipeline) -> None:
    store = ApiKeyStore(pipeline.redis)
    (buyer_key, plaintext), (_, other) = (
        await store.create("buyer", None, 100, 100),
        await store.create("x", None, 100, 100),
    )
    async with httpx_buyer(base_url(pipeline), headers={"X-API-Key": plaintext}) as client:
        response = await client.post("/api/payments", json={"serviceId": "face-detection", "calls": 2})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["clientId"] == buyer_key.client_id
    token = payment["token"]
    for headers, expected in (({}, 403), ({"X-API-Key": other}, 403), ({"X-API-Key": plaintext}, 200)):
        status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token, **headers})
        assert status == expected, body
    view = await (
        await pipeline.api.get(f"/api/payments/{payment['paymentId']}", headers={"X-API-Key": plaintext})
    ).json()
    assert (view["token"], view["remainingCalls"]) == (token, 1)


async def test_payments_show_in_the_metrics(pipeline: Pipeline) -> None:
    token = (await buy(pipeline))["token"]
    for _ in range(2):
        await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": token})
    text = await (await pipeline.api.get("/metrics")).text()
    assert 'server402_payments_total{kind="purchase",outcome="settled"} 1.0' in text
    assert 'server402_payments_total{kind="token",outcome="consumed"} 1.0' in text
    assert 'server402_payments_total{kind="token",outcome="refused"} 1.0' in text


async def test_unpaid_requests_store_nothing_and_their_offers_cannot_be_forged(pipeline: Pipeline) -> None:
    _, body, _ = await pipeline.call("face-detection", face(pipeline))
    bundle = await (await pipeline.api.post("/api/payments", json={"serviceId": "face-detection", "calls": 5})).json()
    assert [key async for key in pipeline.redis.scan_iter("s402:pay*")] == []
    assert await ledger(pipeline) == []
    offer = await (await pipeline.api.get(f"/api/payments/{bundle['payment']['paymentId']}")).json()
    assert (offer["status"], offer["maxCalls"], offer["amountCents"]) == ("pending", 5, 100)
    assert offer["expiresAt"] == bundle["payment"]["expiresAt"]
    genuine = body["payment"]["paymentId"]
    for forged in (genuine.replace(".1.", ".9.", 1), genuine.replace("face-detection", "face-comparison", 1)):
        assert forged != genuine
        assert (await pipeline.api.get(f"/api/payments/{forged}")).status == 404
    status, refused, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": genuine})
    assert (status, refused["code"]) == (402, "invalid_token")  # an offer's id is no token
