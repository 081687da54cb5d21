"""The local x402 facilitator: payments signed by the real x402 client, judged by the SDK's facilitator over the
in-memory ledger, reached through the SDK's own HTTPFacilitatorClient. No blockchain, no Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from x402 import PaymentPayload, PaymentRequired, PaymentRequirements, x402Client
from x402.http import HTTPFacilitatorClient
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.exact.eip3009_utils import diagnose_eip3009_simulation_failure
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.types import ExactEIP3009Authorization
from x402.schemas import ResourceInfo
from x402_support import authorization_of, resign

from sandbox.facilitator.app import LEDGER
from sandbox.facilitator.config import (
    BASE_USDC,
    DEMO_PAY_TO,
    DEMO_WALLET_ADDRESS,
    DEMO_WALLET_KEY,
    FACILITATOR_ADDRESS,
    FACILITATOR_KEY,
    STARTING_BALANCE,
    FacilitatorConfig,
    FacilitatorConfigError,
)
from sandbox.facilitator.ledger import LedgerSigner
from sandbox.facilitator.testing import RunningFacilitator, run_facilitator

ROOT = Path(__file__).resolve().parents[2]
AMOUNT = 200_000
SOMEONE_ELSE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
BASE_SEPOLIA_USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
ETHEREUM_USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
KNOWN_USDC = {("eip155:8453", BASE_USDC), ("eip155:84532", BASE_SEPOLIA_USDC), ("eip155:1", ETHEREUM_USDC)}


def requirement(**changes: Any) -> PaymentRequirements:
    fields: dict[str, Any] = {
        "scheme": "exact",
        "network": "eip155:8453",
        "asset": BASE_USDC,
        "amount": str(AMOUNT),
        "pay_to": DEMO_PAY_TO,
        "max_timeout_seconds": 60,
        "extra": {"name": "USD Coin", "version": "2"},
    }
    return PaymentRequirements(**{**fields, **changes})


async def pay(accepted: PaymentRequirements, key: str = DEMO_WALLET_KEY) -> PaymentPayload:
    """What a buyer's x402 client sends for this requirement: the SDK's exact EVM client scheme signs it."""
    signer = EthAccountSigner(Account.from_key(key))
    client = x402Client().register(str(accepted.network), ExactEvmClientScheme(signer))
    if (accepted.network, accepted.asset) not in KNOWN_USDC:
        client.set_spend_controls(False)  # by default the client pays in the SDK's known USDC deployments only
    required = PaymentRequired(x402_version=2, accepts=[accepted], resource=ResourceInfo(url="http://127.0.0.1/t"))
    payment = await client.create_payment_payload(required)
    assert isinstance(payment, PaymentPayload)
    return payment


async def assert_nothing_moved(facilitator: RunningFacilitator) -> None:
    assert await facilitator.transfers() == []
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == STARTING_BALANCE
    assert await facilitator.balance(DEMO_PAY_TO) == 0


# ---------------------------------------------------------------- valid payments


@pytest.mark.asyncio
async def test_a_valid_payment_verifies_settles_and_moves_exactly_the_amount(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay(requirement())

    verified = await client.verify(payment, requirement())
    assert (verified.is_valid, verified.invalid_reason, verified.payer) == (True, None, DEMO_WALLET_ADDRESS)
    assert await facilitator.transfers() == []  # verify moves nothing

    settled = await client.settle(payment, requirement())
    assert settled.success, settled.error_reason
    assert (settled.payer, settled.network) == (DEMO_WALLET_ADDRESS, "eip155:8453")
    assert settled.transaction.startswith("0x") and len(settled.transaction) == 66
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == STARTING_BALANCE - AMOUNT
    assert await facilitator.balance(DEMO_PAY_TO) == AMOUNT
    [transfer] = await facilitator.transfers()
    assert transfer["from"] == DEMO_WALLET_ADDRESS and transfer["to"] == DEMO_PAY_TO
    assert (transfer["value"], transfer["transaction"]) == (AMOUNT, settled.transaction)
    assert transfer["nonce"] == authorization_of(payment).nonce
    assert abs(transfer["at"] - time.time()) < 60


@pytest.mark.asyncio
async def test_every_settlement_gets_its_own_transaction_hash(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    hashes = {(await client.settle(await pay(requirement()), requirement())).transaction for _ in range(3)}
    assert len(hashes) == 3 and "" not in hashes
    assert await facilitator.balance(DEMO_PAY_TO) == 3 * AMOUNT


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "config",
    [
        FacilitatorConfig(),
        FacilitatorConfig(network="eip155:84532", asset=BASE_SEPOLIA_USDC, asset_name="USDC"),
    ],
    ids=["base", "base-sepolia"],
)
async def test_supported_lists_the_exact_scheme_on_the_configured_network_only(
    config: FacilitatorConfig, client: HTTPFacilitatorClient
) -> None:
    # get_supported is synchronous in the SDK (a blocking httpx call): off the loop that serves the facilitator.
    supported = await asyncio.to_thread(client.get_supported)
    assert [(kind.x402_version, kind.scheme, kind.network) for kind in supported.kinds] == [
        (2, "exact", config.network)
    ]
    assert supported.signers == {"eip155:*": [FACILITATOR_ADDRESS]}

    # The chain id of the configured network is part of what the payer signs, and of what the ledger checks.
    accepted = requirement(
        network=config.network, asset=config.asset, extra={"name": config.asset_name, "version": "2"}
    )
    settled = await client.settle(await pay(accepted), accepted)
    assert (settled.success, settled.network) == (True, config.network)


# ---------------------------------------------------------------- refused payments


@pytest.mark.asyncio
async def test_a_settled_payment_settled_again_answers_the_original_result_and_moves_nothing(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay(requirement())
    first = await client.settle(payment, requirement())
    assert first.success

    again = await client.settle(payment, requirement())  # the settlement cache: what a lost answer asks again
    assert again == first
    verified = await client.verify(payment, requirement())  # verify is not cached: the nonce is used
    assert (verified.is_valid, verified.invalid_reason) == (False, "invalid_exact_evm_nonce_already_used")
    assert len(await facilitator.transfers()) == 1
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == STARTING_BALANCE - AMOUNT


@pytest.mark.asyncio
async def test_a_replay_of_a_used_nonce_in_another_payload_is_refused(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay(requirement())
    assert (await client.settle(payment, requirement())).success

    same_nonce = resign(payment, valid_before=str(int(time.time()) + 600))  # validly signed, another payload
    again = await client.settle(same_nonce, requirement())
    assert (again.success, again.error_reason, again.transaction) == (False, "invalid_exact_evm_nonce_already_used", "")
    judged_elsewhere = await client.settle(payment, requirement(max_timeout_seconds=61))  # other requirements
    assert (judged_elsewhere.success, judged_elsewhere.error_reason) == (False, "invalid_exact_evm_nonce_already_used")
    assert len(await facilitator.transfers()) == 1
    assert await facilitator.balance(DEMO_WALLET_ADDRESS) == STARTING_BALANCE - AMOUNT


@pytest.mark.asyncio
async def test_concurrent_settlements_of_one_payment_pay_once(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay(requirement())
    results = await asyncio.gather(*(client.settle(payment, requirement()) for _ in range(6)))
    assert all(result.success for result in results)
    assert len({result.transaction for result in results}) == 1  # one settle; the others wait and get its result
    assert await facilitator.balance(DEMO_PAY_TO) == AMOUNT
    assert len(await facilitator.transfers()) == 1


@pytest.mark.asyncio
async def test_concurrent_settlements_of_one_nonce_in_two_payloads_pay_once(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay(requirement())
    twin = resign(payment, valid_before=str(int(time.time()) + 600))
    results = await asyncio.gather(*(client.settle(each, requirement()) for each in (payment, twin) * 3))
    assert len({result.transaction for result in results if result.success}) == 1
    assert {result.error_reason for result in results if not result.success} == {"invalid_exact_evm_nonce_already_used"}
    assert await facilitator.balance(DEMO_PAY_TO) == AMOUNT


@pytest.mark.asyncio
@pytest.mark.parametrize("tamper", ["flip-a-signature-byte", "swap-the-nonce"])
async def test_a_tampered_signature_is_refused(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient, tamper: str
) -> None:
    payment = await pay(requirement())
    payload = payment.payload
    if tamper == "flip-a-signature-byte":
        signature = bytearray.fromhex(payload["signature"].removeprefix("0x"))
        signature[40] ^= 0x01
        payload = {**payload, "signature": "0x" + signature.hex()}
    else:
        payload = {**payload, "authorization": {**payload["authorization"], "nonce": "0x" + "ab" * 32}}
    forged = payment.model_copy(update={"payload": payload})

    verified = await client.verify(forged, requirement())
    assert (verified.is_valid, verified.invalid_reason) == (False, "invalid_exact_evm_payload_signature")
    settled = await client.settle(forged, requirement())
    assert (settled.success, settled.error_reason) == (False, "invalid_exact_evm_payload_signature")
    await assert_nothing_moved(facilitator)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("signed_for", "judged_against", "reason"),
    [
        ({"pay_to": SOMEONE_ELSE}, {}, "invalid_exact_evm_payload_recipient_mismatch"),
        ({"amount": str(AMOUNT - 1)}, {}, "invalid_exact_evm_payload_authorization_value_mismatch"),
        ({"asset": SOMEONE_ELSE}, {"asset": SOMEONE_ELSE}, "asset_not_deployed_contract"),
        # The token's own domain check: signed (and required) under another EIP-712 name, the ledger refuses it.
        ({"extra": {"name": "USDC", "version": "2"}}, {"extra": {"name": "USDC", "version": "2"}}, None),
    ],
    ids=["wrong-recipient", "underpaid", "not-the-token", "wrong-domain-name"],
)
async def test_a_payment_that_does_not_match_the_requirement_is_refused(
    facilitator: RunningFacilitator,
    client: HTTPFacilitatorClient,
    signed_for: dict[str, Any],
    judged_against: dict[str, Any],
    reason: str | None,
) -> None:
    reason = reason or "invalid_exact_evm_payload_signature"
    payment = await pay(requirement(**signed_for))
    verified = await client.verify(payment, requirement(**judged_against))
    assert (verified.is_valid, verified.invalid_reason) == (False, reason)
    settled = await client.settle(payment, requirement(**judged_against))
    assert (settled.success, settled.error_reason) == (False, reason)
    await assert_nothing_moved(facilitator)


@pytest.mark.asyncio
async def test_an_expired_authorization_is_refused(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    payment = await pay(requirement())
    now = int(time.time())
    still_valid = resign(payment, valid_before=str(now + 600))
    assert (await client.verify(still_valid, requirement())).is_valid  # the re-signing itself is sound

    expired = resign(payment, valid_before=str(now - 1))
    verified = await client.verify(expired, requirement())
    assert (verified.is_valid, verified.invalid_reason) == (
        False,
        "invalid_exact_evm_payload_authorization_valid_before",
    )
    settled = await client.settle(expired, requirement())
    assert (settled.success, settled.error_reason) == (False, "invalid_exact_evm_payload_authorization_valid_before")
    await assert_nothing_moved(facilitator)


@pytest.mark.asyncio
async def test_an_unfunded_payer_is_refused_until_funded(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    buyer = Account.create()
    payment = await pay(requirement(), key=buyer.key.hex())
    verified = await client.verify(payment, requirement())
    assert (verified.is_valid, verified.invalid_reason, verified.payer) == (
        False,
        "invalid_exact_evm_insufficient_balance",
        buyer.address,
    )
    settled = await client.settle(payment, requirement())
    assert (settled.success, settled.error_reason) == (False, "invalid_exact_evm_insufficient_balance")

    assert await facilitator.fund(buyer.address, AMOUNT - 1) == AMOUNT - 1
    assert (await client.verify(payment, requirement())).invalid_reason == "invalid_exact_evm_insufficient_balance"
    assert await facilitator.fund(buyer.address, 1) == AMOUNT
    assert (await client.settle(payment, requirement())).success
    assert await facilitator.balance(buyer.address) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("asset", [ETHEREUM_USDC, BASE_USDC], ids=["ethereum-usdc", "the-ledger-token"])
async def test_a_payment_for_a_network_not_served_is_invalid(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient, asset: str
) -> None:
    ethereum = requirement(network="eip155:1", asset=asset)
    verified = await client.verify(await pay(ethereum), ethereum)
    assert (verified.is_valid, verified.invalid_reason, verified.payer) == (
        False,
        "invalid_network",
        DEMO_WALLET_ADDRESS,
    )
    settled = await client.settle(await pay(ethereum), ethereum)
    assert (settled.success, settled.error_reason, settled.network) == (False, "invalid_network", "eip155:1")
    # A Base payment judged against an Ethereum requirement is no better.
    verified = await client.verify(await pay(requirement()), ethereum)
    assert (verified.is_valid, verified.invalid_reason) == (False, "invalid_network")
    await assert_nothing_moved(facilitator)


@pytest.mark.asyncio
async def test_a_payment_in_another_scheme_is_invalid(client: HTTPFacilitatorClient) -> None:
    payment = await pay(requirement())
    upto = payment.model_copy(update={"accepted": requirement(scheme="upto")})
    verified = await client.verify(upto, requirement(scheme="upto"))
    assert (verified.is_valid, verified.invalid_reason) == (False, "unsupported_scheme")


@pytest.mark.asyncio
async def test_the_ledger_answers_the_sdks_diagnosis_multicall(
    facilitator: RunningFacilitator, client: HTTPFacilitatorClient
) -> None:
    """verify falls back to a Multicall3 read of balanceOf/name/version/authorizationState: the ledger decodes it."""
    settled_payment = await pay(requirement())
    assert (await client.settle(settled_payment, requirement())).success
    signer = LedgerSigner(facilitator.app[LEDGER], FACILITATOR_ADDRESS)
    fresh = authorization_of(await pay(requirement()))

    def diagnose(authorization: ExactEIP3009Authorization, name: str = "USD Coin", version: str = "2") -> str:
        return diagnose_eip3009_simulation_failure(signer, BASE_USDC, authorization, AMOUNT, name, version)

    assert diagnose(authorization_of(settled_payment)) == "invalid_exact_evm_nonce_already_used"
    assert diagnose(fresh, name="USDC") == "invalid_exact_evm_token_name_mismatch"
    assert diagnose(fresh, version="1") == "invalid_exact_evm_token_version_mismatch"
    assert diagnose(dataclasses.replace(fresh, from_address=SOMEONE_ELSE)) == "invalid_exact_evm_insufficient_balance"
    assert diagnose(fresh) == "invalid_exact_evm_transaction_simulation_failed"  # nothing wrong: nothing specific


# ---------------------------------------------------------------- the HTTP surface


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/verify", "/settle"])
@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"x402Version": 2}',
        b'{"x402Version": 1, "paymentPayload": {"x402Version": 1}, "paymentRequirements": {}}',
        "no-authorization",
        "value-not-a-number",
    ],
    ids=["not-json", "not-an-object", "no-payment", "x402-v1", "no-authorization", "value-not-a-number"],
)
async def test_a_body_that_is_not_a_payment_is_a_400(
    facilitator: RunningFacilitator, path: str, body: bytes | str
) -> None:
    if isinstance(body, str):
        payment = (await pay(requirement())).model_dump(by_alias=True, exclude_none=True)
        if body == "no-authorization":
            payment["payload"] = {"permit2Authorization": {}}
        else:
            payment["payload"]["authorization"]["value"] = "lots"
        envelope = {"x402Version": 2, "paymentPayload": payment, "paymentRequirements": payment["accepted"]}
        async with facilitator.http.post(facilitator.url + path, json=envelope) as response:
            status, answer = response.status, await response.json()
    else:
        async with facilitator.http.post(facilitator.url + path, data=body) as response:
            status, answer = response.status, await response.json()
    assert status == 400
    assert answer["error"] == "bad_request" and answer["message"]
    await assert_nothing_moved(facilitator)


@pytest.mark.asyncio
async def test_admin_endpoints_refuse_bad_input(facilitator: RunningFacilitator) -> None:
    for params in ({}, {"address": "0x1234"}):
        async with facilitator.http.get(f"{facilitator.url}/_facilitator/balances", params=params) as response:
            assert response.status == 400 and (await response.json())["error"] == "bad_request"
    for body in ({"address": DEMO_PAY_TO, "amount": 0}, {"address": DEMO_PAY_TO, "amount": True}, {"amount": 5}):
        async with facilitator.http.post(f"{facilitator.url}/_facilitator/fund", json=body) as response:
            assert response.status == 400, body
    async with facilitator.http.get(f"{facilitator.url}/_facilitator/health") as response:
        health = await response.json()
    assert health["ok"] is True and (health["network"], health["asset"]) == ("eip155:8453", BASE_USDC)
    async with facilitator.http.get(f"{facilitator.url}/verify") as response:
        assert response.status == 405 and (await response.json())["error"] == "method_not_allowed"
    assert await facilitator.balance(DEMO_PAY_TO.lower()) == 0


# ---------------------------------------------------------------- settings and the process


def test_the_documented_keys_match_their_addresses() -> None:
    assert Account.from_key(DEMO_WALLET_KEY).address == DEMO_WALLET_ADDRESS
    assert Account.from_key(FACILITATOR_KEY).address == FACILITATOR_ADDRESS
    assert DEMO_PAY_TO not in FacilitatorConfig().funded_wallets


def test_settings_defaults_and_values_from_the_environment() -> None:
    config = FacilitatorConfig.from_env({})
    assert (config.host, config.port, config.network, config.chain_id) == ("127.0.0.1", 8404, "eip155:8453", 8453)
    assert (config.asset, config.asset_name, config.asset_version) == (BASE_USDC, "USD Coin", "2")
    assert config.funded_wallets == (DEMO_WALLET_ADDRESS,)

    sepolia = FacilitatorConfig.from_env(
        {
            "SERVER402_FACILITATOR_PORT": "9404",
            "SERVER402_X402_NETWORK": "eip155:84532",
            "SERVER402_X402_ASSET": BASE_SEPOLIA_USDC,
            "SERVER402_X402_ASSET_NAME": "USDC",
        }
    )
    assert (sepolia.port, sepolia.chain_id, sepolia.asset, sepolia.asset_name) == (
        9404,
        84532,
        BASE_SEPOLIA_USDC,
        "USDC",
    )


def test_every_bad_setting_is_named() -> None:
    with pytest.raises(FacilitatorConfigError) as caught:
        FacilitatorConfig.from_env(
            {
                "SERVER402_FACILITATOR_PORT": "http",
                "SERVER402_X402_NETWORK": "base",
                "SERVER402_X402_ASSET": "0x1234",
                "SERVER402_SANDBOX_WALLETS": f"{SOMEONE_ELSE}, not-an-address",
            }
        )
    message = str(caught.value)
    for name in ("SERVER402_FACILITATOR_PORT", "SERVER402_X402_NETWORK", "SERVER402_X402_ASSET", "not-an-address"):
        assert name in message
    assert SOMEONE_ELSE not in message


@pytest.mark.asyncio
async def test_sandbox_wallets_are_funded_at_start() -> None:
    second = Account.create().address
    config = FacilitatorConfig.from_env({"SERVER402_SANDBOX_WALLETS": f" {SOMEONE_ELSE.lower()} ,{second},"})
    assert config.funded_wallets == (DEMO_WALLET_ADDRESS, SOMEONE_ELSE, second)
    async with run_facilitator(config) as facilitator:
        for wallet in (DEMO_WALLET_ADDRESS, SOMEONE_ELSE, second):
            assert await facilitator.balance(wallet) == 100_000_000
        assert await facilitator.balance(DEMO_PAY_TO) == 0
        assert await facilitator.balance(Account.create().address) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def facilitator_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SERVER402_")}
    return {**env, "SERVER402_FACILITATOR_LOG_LEVEL": "warning", **extra}


@pytest.mark.asyncio
async def test_python_m_sandbox_facilitator_serves_its_admin_api_until_sigterm() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.facilitator",
        cwd=ROOT,
        env=facilitator_env(SERVER402_FACILITATOR_PORT=str(port), SERVER402_SANDBOX_WALLETS=SOMEONE_ELSE),
    )
    try:
        url = f"http://127.0.0.1:{port}/_facilitator/balances?address={SOMEONE_ELSE}"
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(url) as response:
                        balance = (await response.json())["balance"]
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the facilitator did not start")
            admin = f"http://127.0.0.1:{port}/_facilitator"
            async with http.put(f"{admin}/faults", json={"settle": {"mode": "5xx", "times": 1}}) as response:
                faults = (await response.json())["faults"]
            async with http.post(f"http://127.0.0.1:{port}/settle", json={}) as response:
                assert response.status == 502  # the fault, before the body is even judged
            async with http.get(f"{admin}/counts") as response:
                counts = await response.json()
        assert balance == STARTING_BALANCE
        assert (faults["settle"]["mode"], faults["settle"]["remainingTimes"], faults["verify"]) == ("5xx", 1, None)
        assert counts == {"verify": 0, "settle": 1, "outcomes": {"verify": {}, "settle": {"5xx": 1}}}
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.asyncio
async def test_python_m_sandbox_facilitator_refuses_a_bad_wallet() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.facilitator",
        cwd=ROOT,
        env=facilitator_env(SERVER402_SANDBOX_WALLETS="0xnope"),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"SERVER402_SANDBOX_WALLETS" in stderr and b"0xnope" in stderr
