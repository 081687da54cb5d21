"""Faults of the sandbox facilitator, seen through the SDK's own HTTPFacilitatorClient (httpx) and plain aiohttp:
answers lost after a real settle (late, dropped, 5xx), 5xx and resets without one, `times` and `rate`, latency, the
admin API's validation, the counts, and the settlement cache that lets a client ask again after a lost answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx
import pytest
from x402 import PaymentPayload, PaymentRequirements
from x402.http import FacilitatorConfig as ClientConfig
from x402.http import HTTPFacilitatorClient
from x402_support import base_usdc_requirement, pay_requirement

from sandbox.facilitator.config import DEMO_PAY_TO, DEMO_WALLET_ADDRESS, STARTING_BALANCE
from sandbox.facilitator.testing import RunningFacilitator

AMOUNT = 200_000


def envelope(payment: PaymentPayload, requirements: PaymentRequirements) -> dict[str, Any]:
    """The body HTTPFacilitatorClient posts, for plain aiohttp requests."""
    return {
        "x402Version": 2,
        "paymentPayload": payment.model_dump(mode="json", by_alias=True, exclude_none=True),
        "paymentRequirements": requirements.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


async def post(facilitator: RunningFacilitator, path: str, body: Any) -> tuple[int, Any]:
    async with facilitator.http.post(facilitator.url + path, json=body) as response:
        return response.status, await response.json()


async def assert_settled_once(facilitator: RunningFacilitator, payment: PaymentPayload) -> str:
    """The payment moved exactly once; returns its transaction."""
    [transfer] = await facilitator.transfers()
    assert transfer["nonce"] == payment.payload["authorization"]["nonce"]
    assert await facilitator.balance(DEMO_PAY_TO) == AMOUNT
    return str(transfer["transaction"])


async def assert_nothing_moved(facilitator: RunningFacilitator) -> None:
    assert await facilitator.transfers() == []
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == STARTING_BALANCE


# ---------------------------------------------------------------- answers lost after a real settle


@pytest.mark.asyncio
async def test_settle_then_delay_times_the_client_out_with_the_transfer_done(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    await facilitator.put_faults(settle={"mode": "settle_then_delay", "delayS": 30})
    payment = await pay_requirement(base_usdc_requirement())
    async with HTTPFacilitatorClient(ClientConfig(url=facilitator.url, timeout=0.3)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.settle(payment, base_usdc_requirement())
    transaction = await assert_settled_once(facilitator, payment)

    await facilitator.clear_faults()
    again = await client.settle(payment, base_usdc_requirement())  # what a reconciler does after the lost answer
    assert (again.success, again.transaction, again.payer) == (True, transaction, DEMO_WALLET_ADDRESS)
    assert await facilitator.outcomes() == {"verify": {}, "settle": {"replayed": 1, "settled_then_delayed": 1}}


@pytest.mark.asyncio
async def test_settle_then_delay_answers_the_real_result_late(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    await facilitator.put_faults(settle={"mode": "settle_then_delay", "delayS": 0.3})
    payment = await pay_requirement(base_usdc_requirement())
    started = time.monotonic()
    settled = await client.settle(payment, base_usdc_requirement())
    assert time.monotonic() - started >= 0.3
    assert settled.success and settled.transaction == await assert_settled_once(facilitator, payment)


@pytest.mark.asyncio
async def test_settle_then_drop_disconnects_with_the_transfer_done(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    await facilitator.put_faults(settle={"mode": "settle_then_drop"})
    payment = await pay_requirement(base_usdc_requirement())
    with pytest.raises(httpx.RemoteProtocolError, match="disconnected without sending a response"):
        await client.settle(payment, base_usdc_requirement())
    transaction = await assert_settled_once(facilitator, payment)

    with pytest.raises(aiohttp.ServerDisconnectedError):  # the same payment again: settled, no answer either
        await post(facilitator, "/settle", envelope(payment, base_usdc_requirement()))
    assert await assert_settled_once(facilitator, payment) == transaction
    assert (await facilitator.outcomes())["settle"] == {"replayed_then_dropped": 1, "settled_then_dropped": 1}


@pytest.mark.asyncio
@pytest.mark.parametrize(("spec", "status"), [({}, 502), ({"status5xx": 503}, 503)], ids=["default", "503"])
async def test_settle_then_5xx_answers_a_5xx_with_the_transfer_done(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient, spec: dict[str, Any], status: int
) -> None:
    await facilitator.put_faults(settle={"mode": "settle_then_5xx", **spec})
    payment = await pay_requirement(base_usdc_requirement())
    with pytest.raises(ValueError, match=f"Facilitator settle failed \\({status}\\)"):
        await client.settle(payment, base_usdc_requirement())
    await assert_settled_once(facilitator, payment)

    answer = await post(facilitator, "/settle", envelope(payment, base_usdc_requirement()))
    error = {502: "bad_gateway", 503: "service_unavailable"}[status]
    assert answer == (
        status,
        {"error": error, "message": f"sandbox fault: /settle answered {status} after settling (replayed)"},
    )
    await assert_settled_once(facilitator, payment)


# ---------------------------------------------------------------- failures that settle nothing


@pytest.mark.asyncio
async def test_5xx_answers_a_5xx_and_moves_nothing(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    await facilitator.put_faults(settle={"mode": "5xx", "status5xx": 503}, verify={"mode": "5xx"})
    payment = await pay_requirement(base_usdc_requirement())
    with pytest.raises(ValueError, match=r"Facilitator settle failed \(503\)"):
        await client.settle(payment, base_usdc_requirement())
    with pytest.raises(ValueError, match=r"Facilitator verify failed \(502\)"):
        await client.verify(payment, base_usdc_requirement())
    status, body = await post(facilitator, "/settle", {"not": "even a payment"})
    assert (status, body["error"]) == (503, "service_unavailable")
    await assert_nothing_moved(facilitator)

    await facilitator.clear_faults()
    assert (await client.settle(payment, base_usdc_requirement())).success  # the payment was never spent


@pytest.mark.asyncio
@pytest.mark.parametrize("endpoint", ["settle", "verify"])
async def test_refuse_resets_the_connection_and_moves_nothing(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient, endpoint: str
) -> None:
    await facilitator.put_faults(**{endpoint: {"mode": "refuse"}})
    payment = await pay_requirement(base_usdc_requirement())
    with pytest.raises(httpx.ReadError):  # a connection reset, not an answer
        await getattr(client, endpoint)(payment, base_usdc_requirement())
    with pytest.raises(aiohttp.ClientConnectionError):
        await post(facilitator, f"/{endpoint}", envelope(payment, base_usdc_requirement()))
    await assert_nothing_moved(facilitator)
    assert await facilitator.counts() == {"verify": 0, "settle": 0} | {endpoint: 2}
    assert (await facilitator.outcomes())[endpoint] == {"refused": 2}


# ---------------------------------------------------------------- which requests: times, rate; latency


@pytest.mark.asyncio
async def test_times_loses_the_first_settle_and_the_retry_gets_the_original_result(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    faults = await facilitator.put_faults(settle={"mode": "settle_then_drop", "times": 1})
    assert (faults["verify"], faults["settle"]["remainingTimes"]) == (None, 1)
    payment = await pay_requirement(base_usdc_requirement())
    with pytest.raises(httpx.RemoteProtocolError):
        await client.settle(payment, base_usdc_requirement())
    assert (await facilitator.faults())["settle"]["remainingTimes"] == 0

    retried = await client.settle(payment, base_usdc_requirement())
    assert retried.success and retried.transaction == await assert_settled_once(facilitator, payment)
    assert (await client.settle(await pay_requirement(base_usdc_requirement()), base_usdc_requirement())).success
    assert len(await facilitator.transfers()) == 2
    assert (await facilitator.outcomes())["settle"] == {"replayed": 1, "settled": 1, "settled_then_dropped": 1}


@pytest.mark.asyncio
async def test_a_seeded_rate_hits_the_same_requests_every_time(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay_requirement(base_usdc_requirement())

    async def outcomes() -> list[str]:
        seen = []
        for _ in range(12):
            try:
                seen.append("valid" if (await client.verify(payment, base_usdc_requirement())).is_valid else "?")
            except ValueError:
                seen.append("5xx")
        return seen

    runs = []
    for _ in range(2):
        await facilitator.put_faults(verify={"mode": "5xx", "rate": 0.5, "seed": 7})  # a PUT restarts the draws
        runs.append(await outcomes())
    assert runs[0] == runs[1]
    assert 0 < runs[0].count("5xx") < 12 and set(runs[0]) == {"5xx", "valid"}

    await facilitator.put_faults(verify={"mode": "5xx", "rate": 0.0})
    assert await outcomes() == ["valid"] * 12
    await facilitator.put_faults(verify={"mode": "5xx", "rate": 0.5, "times": 2, "seed": 7})
    assert (await outcomes()).count("5xx") == 2


@pytest.mark.asyncio
async def test_latency_is_waited_before_answering(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay_requirement(base_usdc_requirement())
    await facilitator.put_faults(verify={"latencyMs": {"fixed": 300}}, settle={"latencyMs": {"uniform": [10, 20]}})
    started = time.monotonic()
    assert (await client.verify(payment, base_usdc_requirement())).is_valid
    assert time.monotonic() - started >= 0.3
    await facilitator.put_faults(settle={"latencyMs": {"lognormal": {"median": 5, "sigma": 0.5}}, "seed": 1})
    assert (await client.settle(payment, base_usdc_requirement())).success
    async with HTTPFacilitatorClient(ClientConfig(url=facilitator.url, timeout=0.2)) as impatient:
        await facilitator.put_faults(verify={"mode": "refuse", "latencyMs": {"fixed": 1000}})
        with pytest.raises(httpx.ReadTimeout):  # latency comes first, whatever the mode
            await impatient.verify(payment, base_usdc_requirement())


# ---------------------------------------------------------------- the admin API


@pytest.mark.asyncio
async def test_faults_are_read_replaced_and_cleared(facilitator: RunningFacilitator) -> None:
    assert await facilitator.faults() == {"verify": None, "settle": None}
    faults = await facilitator.put_faults(
        settle={"mode": "settle_then_delay", "delayS": 2.5, "latencyMs": {"fixed": 5}, "rate": 0.25, "seed": 3}
    )
    assert faults == {
        "verify": None,
        "settle": {
            "mode": "settle_then_delay",
            "latencyMs": {"fixed": 5.0},
            "delayS": 2.5,
            "status5xx": None,
            "rate": 0.25,
            "times": None,
            "seed": 3,
            "remainingTimes": None,
        },
    }
    assert await facilitator.faults() == faults
    faults = await facilitator.put_faults(verify={"mode": "refuse", "times": 4})  # replaces both endpoints
    assert faults["settle"] is None and (faults["verify"]["mode"], faults["verify"]["remainingTimes"]) == ("refuse", 4)
    async with facilitator.http.delete(f"{facilitator.url}/_facilitator/faults") as response:
        assert (response.status, await response.json()) == (200, {"faults": {"verify": None, "settle": None}})


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"settle": {"mode": "explode"}}, "settle.mode"),
        ({"settle": {"mode": "settle_then_delay"}}, "delayS"),
        ({"settle": {"mode": "settle_then_drop", "delayS": 1}}, "delayS"),
        ({"settle": {"mode": "settle_then_delay", "delayS": 0}}, "delayS"),
        ({"settle": {"mode": "ok", "status5xx": 503}}, "status5xx"),
        ({"settle": {"mode": "5xx", "status5xx": 404}}, "status5xx"),
        ({"settle": {"rate": 1.5}}, "rate"),
        ({"settle": {"times": 0}}, "times"),
        ({"settle": {"latencyMs": {"fixed": 1, "uniform": [1, 2]}}}, "latencyMs"),
        ({"settle": {"latencyMs": {"uniform": [5, 1]}}}, "latencyMs"),
        ({"verify": {"mode": "settle_then_5xx"}}, "verify: mode settle_then_5xx is for settle only"),
        ({"settle": {"surprise": True}}, "surprise"),
        ({"refund": {"mode": "ok"}}, "refund"),
        ("not an object", "Expected `object`"),
    ],
)
async def test_a_bad_fault_spec_is_a_400_that_says_why(facilitator: RunningFacilitator, body: Any, says: str) -> None:
    await facilitator.put_faults(verify={"mode": "5xx"})
    status, answer = await _put(facilitator, body)
    assert (status, answer["error"]) == (400, "bad_request")
    assert answer["message"].startswith("bad fault spec: ") and says in answer["message"], answer["message"]
    assert (await facilitator.faults())["verify"]["mode"] == "5xx"  # what was in force stays


async def _put(facilitator: RunningFacilitator, body: Any) -> tuple[int, Any]:
    async with facilitator.http.put(f"{facilitator.url}/_facilitator/faults", json=body) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_counts_count_every_request_and_its_outcome(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay_requirement(base_usdc_requirement())
    underpaid = await pay_requirement(base_usdc_requirement(amount=str(AMOUNT - 1)))
    assert (await client.verify(payment, base_usdc_requirement())).is_valid
    assert not (await client.verify(underpaid, base_usdc_requirement())).is_valid
    assert (await post(facilitator, "/verify", {"x402Version": 2}))[0] == 400
    assert (await client.settle(payment, base_usdc_requirement())).success
    assert (await client.settle(payment, base_usdc_requirement())).success
    assert not (await client.settle(underpaid, base_usdc_requirement())).success
    await facilitator.put_faults(settle={"mode": "settle_then_5xx", "times": 1})
    with pytest.raises(ValueError):
        await client.settle(underpaid, base_usdc_requirement())

    assert await facilitator.all_counts() == {
        "verify": 3,
        "settle": 4,
        "outcomes": {
            "verify": {"bad_request": 1, "invalid": 1, "valid": 1},
            "settle": {"failed": 1, "failed_then_5xx": 1, "replayed": 1, "settled": 1},
        },
    }
    assert await facilitator.counts() == {"verify": 3, "settle": 4}


# ---------------------------------------------------------------- the settlement cache


@pytest.mark.asyncio
async def test_a_settle_the_client_hung_up_on_is_still_cached(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    """The client gives up while the settle itself is still running: its success is kept all the same."""
    payment = await pay_requirement(base_usdc_requirement())
    body = envelope(payment, base_usdc_requirement())
    requests = [asyncio.create_task(post(facilitator, "/settle", body)) for _ in range(3)]
    for _ in range(1000):  # until all are received: the first is settling, the others wait on it
        if (await facilitator.counts())["settle"] == 3:
            break
        await asyncio.sleep(0.001)
    for request in requests:
        request.cancel()
    await asyncio.gather(*requests, return_exceptions=True)
    for _ in range(100):
        if await facilitator.transfers():
            break
        await asyncio.sleep(0.01)
    transaction = await assert_settled_once(facilitator, payment)
    again = await client.settle(payment, base_usdc_requirement())
    assert (again.success, again.transaction) == (True, transaction)
    for _ in range(100):  # each request has its one outcome (hung_up for those cut off before it was known)
        outcomes = (await facilitator.outcomes())["settle"]
        if sum(outcomes.values()) == 4:
            break
        await asyncio.sleep(0.01)
    assert sum(outcomes.values()) == 4 and set(outcomes) <= {"hung_up", "settled", "replayed"}, outcomes


@pytest.mark.asyncio
async def test_a_client_that_hangs_up_before_the_outcome_is_counted_as_hung_up(
    facilitator: RunningFacilitator,
) -> None:
    await facilitator.put_faults(verify={"latencyMs": {"fixed": 5000}})
    payment = await pay_requirement(base_usdc_requirement())
    async with HTTPFacilitatorClient(ClientConfig(url=facilitator.url, timeout=0.1)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.verify(payment, base_usdc_requirement())
    for _ in range(100):
        if await facilitator.outcomes() == {"verify": {"hung_up": 1}, "settle": {}}:
            break
        await asyncio.sleep(0.01)
    assert await facilitator.all_counts() == {
        "verify": 1,
        "settle": 0,
        "outcomes": {"verify": {"hung_up": 1}, "settle": {}},
    }
