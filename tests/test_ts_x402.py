"""The official x402 TypeScript client (@x402/fetch, @x402/evm, @x402/extensions; pinned by tests/js/package-lock.json)
pays the gateway: an inline tool call, a bundle, and x402's payment-identifier extension as that client adds it.

The client is tests/js/pay.mjs, run with the machine's Node through tests/ts_harness.py (`npm ci` once per session,
and not at all while node_modules matches the lock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ts_harness
from support import Pipeline
from ts_harness import PRICE_ATOMIC, run_node

from api.callcore.settlements import identifier_key
from sandbox.facilitator.config import DEMO_WALLET_ADDRESS, DEMO_WALLET_KEY
from sandbox.facilitator.testing import RunningFacilitator

ts_client = ts_harness.ts_client  # the session fixture: tests/js installed from its lock (npm ci), once
NODE_TIMEOUT_S = 60


@pytest.fixture
def operator_terms() -> dict[str, Any]:
    return {"defaults": {"amountCents": 20, "qps": 1000}}


@pytest.fixture
def pipeline_env(request: pytest.FixtureRequest, facilitator: RunningFacilitator) -> dict[str, str]:
    required = request.node.get_closest_marker("require_payment_id") is not None
    return {
        "SERVER402_X402_FACILITATOR_URL": facilitator.url,
        "SERVER402_X402_REQUIRE_PAYMENT_ID": "true" if required else "false",
    }


def face(pipeline: Pipeline) -> dict[str, str]:
    return {"ImageURL": pipeline.sandbox.image("face.jpg")}


async def pay(script: Path, pipeline: Pipeline, path: str, body: Any, **options: Any) -> list[dict[str, Any]]:
    """Run pay.mjs against the pipeline's API; one dict per request it made (see pay.mjs for the options)."""
    request = {
        "baseUrl": str(pipeline.api.make_url("")),
        "path": path,
        "body": body,
        "privateKey": DEMO_WALLET_KEY,
        **options,
    }
    return await run_node(script, request, timeout_s=NODE_TIMEOUT_S)


def assert_settled(answer: dict[str, Any]) -> None:
    receipt = answer["paymentResponse"]
    assert receipt is not None, answer
    assert receipt["success"] is True and receipt["network"] == "eip155:8453", receipt
    assert receipt["payer"].lower() == DEMO_WALLET_ADDRESS.lower() and receipt["transaction"], receipt


async def test_the_ts_client_pays_an_inline_call_and_is_debited_once(
    ts_client: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    [answer] = await pay(ts_client, pipeline, "/api/tools/face-detection", face(pipeline))
    assert answer["status"] == 200, answer
    assert answer["body"]["data"]["Action"] == "DetectFace"
    assert_settled(answer)
    assert answer["paymentId"] is None  # no extension asked for: the client adds none by itself
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - PRICE_ATOMIC
    assert (await facilitator.counts())["settle"] == 1


async def test_the_ts_clients_payment_identifier_reaches_the_server_and_a_replay_is_answered_once(
    ts_client: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    first, replay = await pay(
        ts_client, pipeline, "/api/tools/face-detection", face(pipeline), paymentIdentifier=True, replays=1
    )
    assert first["status"] == 200, first
    assert_settled(first)
    payment_id = first["paymentId"]
    assert payment_id and payment_id == replay["paymentId"]
    claimed = await pipeline.redis.get(identifier_key(payment_id, DEMO_WALLET_ADDRESS))
    assert claimed is not None  # the server read the id the TS client put in the payment
    assert replay["status"] == 200, replay
    assert replay["body"]["data"] == first["body"]["data"]  # the first answer again, not a second call
    assert (await facilitator.counts())["settle"] == 1
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - PRICE_ATOMIC
    assert (await pipeline.sandbox.stats())["actions"]["DetectFace"]["calls"] == 1


async def test_the_ts_client_paying_again_under_the_same_id_signs_a_new_payload_and_gets_409(
    ts_client: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    """The spec: same id, different payload -> 409. wrapFetchWithPayment signs afresh (new nonce) on every 402,
    so a client that "retries with the same id" through it sends another payload, not the same one."""
    tool = "/api/tools/face-detection"
    same_id = "pay_ts_client_0123456789"
    first, second = await pay(ts_client, pipeline, tool, face(pipeline), paymentId=same_id, payments=2)
    assert first["status"] == 200, first
    assert (second["status"], second["body"]["code"]) == (409, "payment_identifier_reused"), second
    assert second["paymentResponse"] is None
    assert (await facilitator.counts())["settle"] == 1


@pytest.mark.require_payment_id
async def test_when_the_operator_requires_it_the_ts_client_with_the_extension_pays(
    ts_client: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    [answer] = await pay(ts_client, pipeline, "/api/tools/face-detection", face(pipeline), paymentIdentifier=True)
    assert answer["status"] == 200, answer
    assert_settled(answer)
    assert answer["paymentId"]
    assert (await facilitator.counts())["settle"] == 1


@pytest.mark.require_payment_id
async def test_when_the_operator_requires_it_the_ts_client_without_the_extension_gets_400(
    ts_client: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    [answer] = await pay(ts_client, pipeline, "/api/tools/face-detection", face(pipeline))
    assert answer["status"] == 400, answer
    assert "payment-identifier" in answer["body"]["error"]
    assert answer["paymentId"] is None and answer["paymentResponse"] is None
    assert await facilitator.counts() == {"verify": 0, "settle": 0}


async def test_the_ts_client_buys_a_bundle_and_gets_its_token(
    ts_client: Path, pipeline: Pipeline, facilitator: RunningFacilitator
) -> None:
    before = await facilitator.balance(DEMO_WALLET_ADDRESS)
    [answer] = await pay(ts_client, pipeline, "/api/payments", {"serviceId": "face-detection", "calls": 2})
    assert answer["status"] == 201, answer
    assert answer["body"]["token"], answer
    assert answer["body"]["maxCalls"] == 2 and answer["body"]["status"] == "paid", answer
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == before - 2 * PRICE_ATOMIC
