"""x402 buyers for tests: the official SDK client signing payments with test keys funded on the sandbox ledger."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from eth_account import Account
from x402 import PaymentPayload, PaymentRequired, PaymentRequirements, x402Client
from x402.http.clients.httpx import x402HttpxClient
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.eip712 import build_typed_data_for_signing
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.types import ExactEIP3009Authorization, ExactEIP3009Payload
from x402.schemas import ResourceInfo

from sandbox.facilitator.config import BASE_USDC, DEMO_PAY_TO, DEMO_WALLET_KEY


def buyer(key: str = DEMO_WALLET_KEY) -> x402Client:
    return x402Client().register("eip155:*", ExactEvmClientScheme(EthAccountSigner(Account.from_key(key))))


def httpx_buyer(base_url: str, key: str = DEMO_WALLET_KEY, **kwargs: Any) -> x402HttpxClient:
    """The official x402 httpx client: pays a 402 by itself and retries the request."""
    return x402HttpxClient(buyer(key), base_url=base_url, timeout=30, **kwargs)


def new_wallet() -> tuple[str, str]:
    account = Account.create(secrets.token_hex(16))
    return account.key.hex(), account.address


async def sign_for(required_header: str, key: str = DEMO_WALLET_KEY) -> PaymentPayload:
    required = decode_payment_required_header(required_header)
    assert isinstance(required, PaymentRequired)
    payment = await buyer(key).create_payment_payload(required)
    assert isinstance(payment, PaymentPayload)
    return payment


def header_of(payment: PaymentPayload) -> str:
    return encode_payment_signature_header(payment)


def authorization_of(payment: PaymentPayload) -> ExactEIP3009Authorization:
    return ExactEIP3009Payload.from_dict(payment.payload).authorization


def resign(payment: PaymentPayload, key: str = DEMO_WALLET_KEY, **changes: str) -> PaymentPayload:
    """The payment with authorization fields changed, validly signed again over the SDK's own EIP-712 data."""
    authorization = dataclasses.replace(authorization_of(payment), **changes)
    accepted = payment.accepted
    chain_id = int(str(accepted.network).removeprefix("eip155:"))
    typed = build_typed_data_for_signing(
        authorization, chain_id, accepted.asset, accepted.extra["name"], accepted.extra["version"]
    )
    signature = EthAccountSigner(Account.from_key(key)).sign_typed_data(*typed)  # type: ignore[arg-type]
    payload = ExactEIP3009Payload(authorization=authorization, signature="0x" + signature.hex())
    return payment.model_copy(update={"payload": payload.to_dict()})


def base_usdc_requirement(**changes: Any) -> PaymentRequirements:
    """What the sandbox facilitator serves by default: 0.20 Base USDC (exact scheme) to the demo payTo."""
    fields: dict[str, Any] = {
        "scheme": "exact",
        "network": "eip155:8453",
        "asset": BASE_USDC,
        "amount": "200000",
        "pay_to": DEMO_PAY_TO,
        "max_timeout_seconds": 60,
        "extra": {"name": "USD Coin", "version": "2"},
    }
    return PaymentRequirements(**{**fields, **changes})


async def pay_requirement(accepted: PaymentRequirements, key: str = DEMO_WALLET_KEY) -> PaymentPayload:
    """The payment the official x402 client signs for this one requirement (a known USDC deployment)."""
    required = PaymentRequired(x402_version=2, accepts=[accepted], resource=ResourceInfo(url="http://127.0.0.1/t"))
    payment = await buyer(key).create_payment_payload(required)
    assert isinstance(payment, PaymentPayload)
    return payment
