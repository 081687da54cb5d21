"""The threat model's tests: forged payments, stolen tokens, tenants, published terms, bounds and leaks.

Each test plays an attacker against the real stack (the official x402 client and SDK signing with test keys, the
sandbox facilitator's ledger, real workers and the sandbox upstream) and checks what the attacker gets: nothing.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from redis.asyncio import Redis
from support import Pipeline
from x402 import PaymentPayload
from x402_support import authorization_of, header_of, httpx_buyer, new_wallet, resign, sign_for

from api.apikeys import ApiKeyStore
from sandbox.facilitator.config import DEMO_WALLET_ADDRESS
from sandbox.facilitator.testing import RunningFacilitator
from shared.config import ConfigError, Settings
from shared.operator import parse_operator_terms
from workers.tenancy import Namespaces

PRICE_ATOMIC = 200_000


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {
        "defaults": {"amountCents": 20, "qps": 1000},
        "services": {
            "facial-expression-recognition": {"amountCents": 0},
            "body-pose-estimation": {"bindClient": False},
        },
    }


@pytest.fixture
def pipeline_env(facilitator: RunningFacilitator) -> dict[str, str]:
    return {"SERVER402_X402_FACILITATOR_URL": facilitator.url, "SERVER402_ANON_BATCH_FREE_ITEMS": "3"}


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


def base_url(pipeline: Pipeline) -> str:
    return str(pipeline.api.make_url("")).rstrip("/")


async def required(pipeline: Pipeline, path: str = "/api/tools/face-detection", body: Any = None) -> str:
    response = await pipeline.api.post(path, json=body if body is not None else face(pipeline))
    assert response.status == 402
    return str(response.headers["PAYMENT-REQUIRED"])


async def purchase_required(pipeline: Pipeline, calls: int = 1) -> str:
    return await required(pipeline, "/api/payments", {"serviceId": "face-detection", "calls": calls})


def forged(payment: PaymentPayload, signature: str | None = None, **authorization: str) -> PaymentPayload:
    """The payment with authorization fields changed and NOT signed again (what an attacker can make)."""
    inner = dict(payment.payload)
    inner["authorization"] = {**inner["authorization"], **authorization}
    if signature is not None:
        inner["signature"] = signature
    return payment.model_copy(update={"payload": inner})


ZERO_SIGNATURE = "0x" + "00" * 65


# ---------------------------------------------------------------- verified before trusted


async def test_the_token_theft_of_the_report_gets_nothing_and_reaches_no_facilitator(
    pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """A victim buys; the attacker replays the victim's (public) from and nonce with a zero signature."""
    body = {"serviceId": "face-detection", "calls": 1}
    victim = await sign_for(await purchase_required(pipeline))
    bought = await pipeline.api.post("/api/payments", json=body, headers={"PAYMENT-SIGNATURE": header_of(victim)})
    assert bought.status == 201
    counts = await facilitator.counts()
    nonce = authorization_of(victim).nonce
    attack = forged(victim, ZERO_SIGNATURE, value="1", validBefore="99999999999", nonce=nonce)
    answer = await pipeline.api.post("/api/payments", json=body, headers={"PAYMENT-SIGNATURE": header_of(attack)})
    payload = await answer.json()
    assert (answer.status, payload["code"], payload["payment"]["token"]) == (402, "payment_amount_mismatch", "")
    assert await facilitator.counts() == counts  # no /verify, no /settle for a forgery


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("zero_signature", "payment_signature_invalid"),
        ("value", "payment_amount_mismatch"),
        ("valid_before", "payment_signature_invalid"),
        ("to", "payment_recipient_mismatch"),
        ("another_payers_nonce", "payment_signature_invalid"),
        ("signed_by_another_wallet", "payment_signature_invalid"),
        ("too_long_validity", "payment_validity_too_long"),
        ("smart_wallet_signature", "payment_signature_unsupported"),
    ],
)
async def test_each_forgery_is_a_402_with_a_clear_code_and_never_reaches_the_facilitator(
    pipeline: Pipeline, facilitator: RunningFacilitator, change: str, code: str
) -> None:
    payment = await sign_for(await required(pipeline))
    auth = authorization_of(payment)
    attacker_key, _ = new_wallet()
    victim = await sign_for(await required(pipeline))
    forgeries = {
        "zero_signature": lambda: forged(payment, ZERO_SIGNATURE),
        "value": lambda: forged(payment, value="1"),
        "valid_before": lambda: forged(payment, validBefore=str(int(auth.valid_before) + 30)),
        "to": lambda: forged(payment, to=DEMO_WALLET_ADDRESS),
        "another_payers_nonce": lambda: resign(payment, attacker_key, nonce=authorization_of(victim).nonce),
        "signed_by_another_wallet": lambda: resign(payment, attacker_key),
        "too_long_validity": lambda: resign(payment, valid_before=str(int(time.time()) + 86_400)),
        "smart_wallet_signature": lambda: forged(payment, "0x" + "ab" * 200),
    }
    attack = forgeries[change]()
    status, body, headers = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(attack)}
    )
    assert (status, body["code"]) == (402, code), body
    assert "PAYMENT-REQUIRED" in headers and body["message"]
    assert await facilitator.counts() == {"verify": 0, "settle": 0}
    assert await pipeline.redis.keys("s402:x402:nonce:*") == []  # nothing claimed, nothing written
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(payment)})
    assert status == 200  # the genuine payment is still good


async def test_an_inline_payments_idempotency_is_scoped_by_its_verified_payload(pipeline: Pipeline) -> None:
    payment = await sign_for(await required(pipeline))
    first = {"PAYMENT-SIGNATURE": header_of(payment), "Idempotency-Key": "k-1"}
    status, one, _ = await pipeline.call("face-detection", face(pipeline), **first)
    assert status == 200
    status, again, _ = await pipeline.call("face-detection", face(pipeline), **first)
    assert status == 200 and again == one  # the same payload and key: the same job, not paid again
    # the same claimed payer and nonce under a forged signature looks nothing up: it is a forgery
    attack = forged(payment, ZERO_SIGNATURE)
    status, body, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"PAYMENT-SIGNATURE": header_of(attack), "Idempotency-Key": "k-1"}
    )
    assert (status, body["code"]) == (402, "payment_signature_invalid")


# ---------------------------------------------------------------- tenants


async def test_two_casings_of_one_address_are_one_tenant(pipeline: Pipeline, facilitator: RunningFacilitator) -> None:
    create = await sign_for(await required(pipeline, "/api/tools/face-database-create", {"Name": "people"}))
    lowered = resign(create, **{"from_address": authorization_of(create).from_address.lower()})
    status, body, _ = await pipeline.call(
        "face-database-create", {"Name": "people"}, **{"PAYMENT-SIGNATURE": header_of(lowered)}
    )
    assert status == 200, body
    listing = await sign_for(await required(pipeline, "/api/tools/face-database-list", {}))
    status, body, _ = await pipeline.call("face-database-list", {}, **{"PAYMENT-SIGNATURE": header_of(listing)})
    assert status == 200, body
    assert [db["Name"] for db in body["data"]["Result"]["DbList"]] == ["people"]  # the checksummed payer sees its db
    other_key, other_address = new_wallet()
    await facilitator.fund(other_address, 10**7)
    stranger = await sign_for(await required(pipeline, "/api/tools/face-database-list", {}), other_key)
    status, body, _ = await pipeline.call("face-database-list", {}, **{"PAYMENT-SIGNATURE": header_of(stranger)})
    assert status == 200 and body["data"]["Result"]["DbList"] == []


async def test_two_tenants_never_share_a_namespace_even_when_they_draw_the_same_id(redis: Redis) -> None:
    await redis.flushdb()
    draws = iter(["aaaaaaaaaa"] * 4 + ["aaaaaaaaaa"] * 3 + ["bbbbbbbbbb"])
    namespaces = Namespaces(redis, draw=lambda: next(draws))
    first = await namespaces.prefix("key:000000000001")
    second = await namespaces.prefix("0x" + "ab" * 20)
    assert (first, second) == ("taaaaaaaaaa_", "tbbbbbbbbbb_")
    again = Namespaces(redis)  # another worker: the same tenant keeps its namespace
    assert await again.prefix("key:000000000001") == first
    many = {await again.prefix(f"key:{index:012x}") for index in range(200)}
    assert len(many) == 200


# ---------------------------------------------------------------- published terms


async def api_key(pipeline: Pipeline, name: str) -> tuple[str, str]:
    created, plaintext = await ApiKeyStore(pipeline.redis).create(name, None, 1000, 1000)
    return created.client_id, plaintext


async def buy(pipeline: Pipeline, service: str = "face-detection", **headers: str) -> dict[str, Any]:
    async with httpx_buyer(base_url(pipeline), headers=headers) as client:
        response = await client.post("/api/payments", json={"serviceId": service, "calls": 2})
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def test_bind_client_for_a_key_buyer_the_token_pays_only_with_that_key(pipeline: Pipeline) -> None:
    client_id, key = await api_key(pipeline, "buyer")
    _, other = await api_key(pipeline, "other")
    payment = await buy(pipeline, **{"X-API-Key": key})
    assert payment["boundTo"] == client_id == payment["clientId"]
    for headers, expected in (({}, 403), ({"X-API-Key": other}, 403), ({"X-API-Key": key}, 200)):
        status, body, _ = await pipeline.call(
            "face-detection", face(pipeline), **{"X-Payment-Token": payment["token"], **headers}
        )
        assert status == expected, body


async def test_bind_client_for_a_wallet_buyer_the_token_pays_only_without_anyone_elses_key(pipeline: Pipeline) -> None:
    _, key = await api_key(pipeline, "someone")
    payment = await buy(pipeline)
    assert payment["boundTo"] == DEMO_WALLET_ADDRESS
    status, body, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"X-Payment-Token": payment["token"], "X-API-Key": key}
    )
    assert (status, body["code"]) == (403, "token_bound_to_other_client")
    status, _, _ = await pipeline.call("face-detection", face(pipeline), **{"X-Payment-Token": payment["token"]})
    assert status == 200


async def test_a_service_published_with_bind_client_false_has_unbound_tokens(pipeline: Pipeline) -> None:
    catalog = await (await pipeline.api.get("/api/services/body-pose-estimation")).json()
    assert catalog["pricing"]["bindClient"] is False
    payment = await buy(pipeline, "body-pose-estimation")
    assert payment.get("boundTo") is None
    _, key = await api_key(pipeline, "anyone")
    status, _, _ = await pipeline.call(
        "body-pose-estimation", face(pipeline), **{"X-Payment-Token": payment["token"], "X-API-Key": key}
    )
    assert status == 200


@pytest.mark.parametrize("buyer", ["key", "wallet"])
async def test_allow_reuse_false_a_paid_call_is_spent_once_for_each_kind_of_buyer(
    pipeline: Pipeline, buyer: str
) -> None:
    headers = {"X-API-Key": (await api_key(pipeline, "b"))[1]} if buyer == "key" else {}
    payment = await buy(pipeline, **headers)
    for _ in range(2):
        status, _, _ = await pipeline.call(
            "face-detection", face(pipeline), **{"X-Payment-Token": payment["token"], **headers}
        )
        assert status == 200
    status, body, _ = await pipeline.call(
        "face-detection", face(pipeline), **{"X-Payment-Token": payment["token"], **headers}
    )
    assert (status, body["code"]) == (402, "no_calls_left")
    inline = await sign_for(await required(pipeline))
    signed = {"PAYMENT-SIGNATURE": header_of(inline), **headers}
    assert (await pipeline.call("face-detection", face(pipeline), **signed))[0] == 200
    status, body, _ = await pipeline.call("face-detection", face(pipeline), **signed)
    assert (status, body["code"]) == (402, "payment_replayed")  # one signed payment pays one call


def test_a_term_that_cannot_hold_is_refused_at_start(catalog: Any) -> None:
    ids = {service.id for service in catalog.services}
    with pytest.raises(ConfigError, match="allowReuse"):
        parse_operator_terms({"defaults": {"allowReuse": True}}, ids)


# ---------------------------------------------------------------- abuse


async def test_a_webhook_needs_an_api_key_or_a_token_that_pays_for_the_call(pipeline: Pipeline) -> None:
    webhook = "?webhook=https://93.184.216.34/hook"
    garbage = {"X-Payment-Token": "s402pt_pay_nothing.here"}
    status, body, _ = await pipeline.call(f"facial-expression-recognition{webhook}", face(pipeline), **garbage)
    assert status == 400 and "webhook" in body["error"]
    payment = await buy(pipeline)
    status, body, _ = await pipeline.call(
        f"facial-expression-recognition{webhook}", face(pipeline), **{"X-Payment-Token": payment["token"]}
    )
    assert status == 400, body  # a token that does not pay for this (free) call has no standing
    status, body, _ = await pipeline.call(
        f"face-detection{webhook}", face(pipeline), **{"X-Payment-Token": payment["token"], "Prefer": "respond-async"}
    )
    assert status == 202, body


async def test_anonymous_batches_of_free_items_are_bounded_and_free_batches_carry_no_webhook(
    pipeline: Pipeline,
) -> None:
    item = {"serviceId": "facial-expression-recognition", "input": face(pipeline)}
    items = [{**item, "customId": str(index)} for index in range(4)]
    response = await pipeline.api.post("/api/batches", json=items)
    assert response.status == 422 and "at most 3" in (await response.json())["message"]
    payment = await buy(pipeline)
    response = await pipeline.api.post(
        "/api/batches",
        json={"items": items[:3], "webhook": "https://93.184.216.34/hook"},
        headers={"X-Payment-Token": payment["token"]},
    )
    assert response.status == 400  # the token pays for no item of this batch
    _, key = await api_key(pipeline, "batcher")
    response = await pipeline.api.post("/api/batches", json=items, headers={"X-API-Key": key})
    assert response.status == 201


# ---------------------------------------------------------------- leaks


async def test_a_payments_private_fields_are_shown_only_to_its_owner(pipeline: Pipeline) -> None:
    client_id, key = await api_key(pipeline, "owner")
    payment = await buy(pipeline, **{"X-API-Key": key})
    public = await (await pipeline.api.get(f"/api/payments/{payment['paymentId']}")).json()
    assert public == {"paymentId": payment["paymentId"], "serviceId": "face-detection", "status": "paid"}
    _, other = await api_key(pipeline, "other")
    seen = await (await pipeline.api.get(f"/api/payments/{payment['paymentId']}", headers={"X-API-Key": other})).json()
    assert seen == public
    own = await (await pipeline.api.get(f"/api/payments/{payment['paymentId']}", headers={"X-API-Key": key})).json()
    assert own["clientId"] == client_id and own["payer"] == DEMO_WALLET_ADDRESS and own["transaction"]


@pytest.mark.parametrize(
    "env",
    [
        {"SERVER402_X402_FACILITATOR_URL": "https://x402.org/facilitator"},
        {"SERVER402_X402_PAY_TO": "0x" + "12" * 20},
    ],
)
def test_the_public_sandbox_secret_is_refused_with_a_real_facilitator_or_payee(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="SERVER402_TOKEN_SECRET is the sandbox's public value"):
        Settings.from_env(env)
    Settings.from_env({**env, "SERVER402_TOKEN_SECRET": secrets.token_urlsafe(32)})


async def test_every_token_of_a_batch_must_pay_for_an_item_so_the_first_one_owns_it(pipeline: Pipeline) -> None:
    """Else a token listed first that pays nothing would scope the batch's Idempotency-Key (and its webhook
    secret) apart from its owner: its holder could replay the key and see the batch."""
    unused, paying = await buy(pipeline, "body-pose-estimation"), await buy(pipeline)
    items = [{"customId": "1", "serviceId": "face-detection", "input": face(pipeline)}]
    response = await pipeline.api.post(
        "/api/batches",
        json=items,
        headers={"X-Payment-Token": f"{unused['token']},{paying['token']}", "Idempotency-Key": "batch-1"},
    )
    assert response.status == 400 and "pays for no item" in (await response.json())["error"]
    assert await pipeline.redis.keys("s402:batch:*") == []
