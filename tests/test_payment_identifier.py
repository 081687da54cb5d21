"""x402's payment-identifier extension, with the official Python client adding the id: the 402 declares it, the
same id and payload join the first answer (even while it settles), the same id with another payload is 409, and
an operator can require it (400 without)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import Pipeline
from x402 import PaymentPayload, PaymentRequired
from x402.extensions.bazaar import validate_discovery_extension
from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER, append_payment_identifier_to_extensions
from x402.http.utils import decode_payment_required_header, decode_payment_response_header
from x402_support import buyer, header_of, new_wallet

from sandbox.facilitator.config import DEMO_WALLET_ADDRESS, DEMO_WALLET_KEY
from sandbox.facilitator.testing import RunningFacilitator

PRICE_ATOMIC = 200_000


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 20, "qps": 1000}}


@pytest.fixture
def pipeline_env(request: pytest.FixtureRequest, facilitator: RunningFacilitator) -> dict[str, str]:
    required = request.node.get_closest_marker("require_payment_id") is not None
    return {
        "SERVER402_X402_FACILITATOR_URL": facilitator.url,
        "SERVER402_X402_FACILITATOR_TIMEOUT_S": "1",
        "SERVER402_X402_REQUIRE_PAYMENT_ID": "true" if required else "false",
    }


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


async def terms(pipeline: Pipeline, path: str, body: Any) -> PaymentRequired:
    response = await pipeline.api.post(path, json=body)
    assert response.status == 402
    required = decode_payment_required_header(response.headers["PAYMENT-REQUIRED"])
    assert isinstance(required, PaymentRequired)
    return required


async def identified(
    required: PaymentRequired, payment_id: str | None = None, *, key: str = DEMO_WALLET_KEY
) -> PaymentPayload:
    """What the official client signs with the extension's id in it (generated unless given)."""
    extensions = append_payment_identifier_to_extensions(dict(required.extensions or {}), payment_id)
    payment = await buyer(key).create_payment_payload(required, extensions=extensions)
    assert isinstance(payment, PaymentPayload)
    return payment


async def test_the_402_declares_the_extension_optional_by_default(pipeline: Pipeline) -> None:
    required = await terms(pipeline, "/api/tools/face-detection", face(pipeline))
    assert required.extensions is not None and required.extensions[PAYMENT_IDENTIFIER]["info"]["required"] is False


async def test_a_repeat_of_an_identified_payment_joins_its_settlement_and_is_paid_once(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    payment = await identified(await terms(pipeline, "/api/tools/face-detection", face(pipeline)))
    await facilitator.put_faults(settle={"mode": "settle_then_drop", "times": 1})  # paid, the answer lost
    sent = {"PAYMENT-SIGNATURE": header_of(payment), "Prefer": "respond-async"}
    status, first, _ = await pipeline.call("face-detection", face(pipeline), **sent)
    assert (status, first["status"]) == (202, "settling")
    status, again, _ = await pipeline.call("face-detection", face(pipeline), **sent)  # no Idempotency-Key needed
    assert status == 202 and again["jobId"] == first["jobId"]
    for _ in range(200):
        status, body = await pipeline.job(first["jobId"])
        if body["status"] == "succeeded":
            break
        await asyncio.sleep(0.05)
    assert body["status"] == "succeeded"
    status, body, headers = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(payment)}
    )
    assert status == 200 and body["data"]["Action"] == "DetectFace"  # the first answer, not a second call
    receipt = decode_payment_response_header(headers["PAYMENT-RESPONSE"])  # and its receipt, which was lost
    assert receipt.success and receipt.transaction and receipt.payer == DEMO_WALLET_ADDRESS
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - PRICE_ATOMIC
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_the_same_id_with_another_payment_is_409(pipeline: Pipeline) -> None:
    required = await terms(pipeline, "/api/tools/face-detection", face(pipeline))
    first = await identified(required, "pay_shared_id_0123456789")
    second = await identified(required, "pay_shared_id_0123456789")  # another nonce, another signature
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(first)})
    assert status == 200
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(second)})
    assert (status, body["code"]) == (409, "payment_identifier_reused")


async def test_a_repeated_identified_purchase_gets_its_token_back(pipeline: Pipeline) -> None:
    body = {"serviceId": "face-detection", "calls": 2}
    payment = await identified(await terms(pipeline, "/api/payments", body))
    signed = {"PAYMENT-SIGNATURE": header_of(payment)}
    bought = await pipeline.api.post("/api/payments", json=body, headers=signed)
    again = await pipeline.api.post("/api/payments", json=body, headers=signed)
    assert (bought.status, again.status) == (201, 200)
    assert (await again.json())["token"] == (await bought.json())["token"]  # the id is the sender's secret


@pytest.mark.require_payment_id
async def test_an_operator_may_require_it_and_a_payment_without_it_is_400(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    required = await terms(pipeline, "/api/tools/face-detection", face(pipeline))
    assert required.extensions is not None and required.extensions[PAYMENT_IDENTIFIER]["info"]["required"] is True
    bare = await buyer().create_payment_payload(required)
    assert isinstance(bare, PaymentPayload)
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(bare)})
    assert status == 400 and "payment-identifier" in body["error"]
    assert await facilitator.counts() == {"verify": 0, "settle": 0}
    status, _, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(await identified(required))}
    )
    assert status == 200


async def test_the_402_declares_bazaar_discovery_and_a_bodyless_probe_gets_it(pipeline: Pipeline) -> None:
    """x402 discovery services list a resource from its 402: a probe without payment or body must get the 402
    (not a 400 for the missing input), and it declares how to call the tool and what it answers."""
    probe = await pipeline.api.post("/api/tools/face-detection")
    assert probe.status == 402
    required = decode_payment_required_header(probe.headers["PAYMENT-REQUIRED"])
    assert isinstance(required, PaymentRequired) and required.extensions is not None
    discovery = required.extensions["bazaar"]
    assert discovery["info"]["input"]["method"] == "POST" and discovery["info"]["input"]["bodyType"] == "json"
    assert "ImageURL" in discovery["schema"]["properties"]["input"]["properties"]["body"]["properties"]
    assert set(discovery["info"]["output"]["schema"]["properties"]) >= {"data", "requestId"}
    validated = validate_discovery_extension(discovery)
    assert validated.valid, validated.errors
    purchase = await pipeline.api.post("/api/payments", json={"serviceId": "face-detection"})
    offered = decode_payment_required_header(purchase.headers["PAYMENT-REQUIRED"])
    assert "bazaar" not in (offered.extensions or {})  # only tools are resources to discover
    # input is still validated before anything is paid: a paid call without its input is 400, not settled
    payment = await identified(required)
    status, body, _ = await pipeline.call("face-detection", {}, **{"PAYMENT-SIGNATURE": header_of(payment)})
    assert status == 400 and body["error"] == "ImageURL is required"


async def test_an_identifier_whose_payment_was_refused_outright_may_pay_again(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """A refusal made before any transfer undoes everything, the identifier's claim included: the payer funds its
    wallet and pays again under the same id."""
    key, address = new_wallet()
    required = await terms(pipeline, "/api/tools/face-detection", face(pipeline))
    first = await identified(required, "pay_retry_after_funding_01", key=key)
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(first)})
    assert (status, body["code"]) == (402, "invalid_exact_evm_insufficient_balance")
    await facilitator.fund(address, PRICE_ATOMIC)
    again = await identified(required, "pay_retry_after_funding_01", key=key)
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(again)})
    assert status == 200, body
